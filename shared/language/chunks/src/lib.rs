//! The table of known chunks behind `shared.language.analysis.analyse`.
//!
//! A text's `stem` and `fold` fields are its chunks' tokens joined (a chunk: what
//! `bytes.split()` makes of its UTF-8, each chunk's tokens followed by a space). In
//! Python each chunk cost a bytes object, its hash and two lookups; here a text is
//! split and looked up without an object per chunk. What a chunk's tokens are is
//! still decided in Python: the chunks not known yet are handed to the `make`
//! callback, all of a call's at once, so this module only remembers and joins.
//!
//! Bounded as the Python tables were: chunks of at most `kept_chunk_bytes` whose
//! tokens have at most `kept_tokens_chars` characters, in two generations of at
//! most `per_generation` entries (a full one becomes the older one, whose entries
//! a call uses move on to the newest). Hashed by foldhash (hashbrown's default): a
//! third of a text's cost less than the standard library's SipHash. The chunks come
//! from the open web, and a known seed would let a page choose its collisions, so the
//! seeds come from the operating system's randomness (through the standard library's
//! keys), not from foldhash's own (addresses and the clock). foldhash does not
//! claim to resist an attacker who can watch its timing; the indexer's is not
//! observable from a page, and a generation holds at most `per_generation` entries.

use std::borrow::Cow;
use std::collections::hash_map::RandomState as KeyedAtRandom;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use foldhash::fast::SeedableRandomState as Seeded;
use foldhash::SharedSeed;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PySlice, PyString};

/// A chunk's spaced `stem` and `fold` tokens.
type Tokens = Arc<(Box<str>, Box<str>)>;
type Chunk = Box<[u8]>;
type Generation = HashMap<Chunk, Tokens, Seeded>;

/// 64 bits the operating system chose: the standard library keys its SipHash with
/// its randomness, and what an empty hasher finishes with depends on nothing else.
fn os_random() -> u64 {
    KeyedAtRandom::new().build_hasher().finish()
}

/// A foldhash state seeded from the operating system's randomness.
fn seeded() -> Seeded {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    Seeded::with_seed(
        os_random(),
        SHARED.get_or_init(|| SharedSeed::from_u64(os_random())),
    )
}

fn generation() -> Generation {
    HashMap::with_hasher(seeded())
}

struct Generations {
    newest: Generation,
    older: Generation,
}

impl Generations {
    fn new() -> Self {
        Self {
            newest: generation(),
            older: generation(),
        }
    }
}

#[pyclass(frozen)]
struct ChunkTable {
    max_chars: usize,
    kept_chunk_bytes: usize,
    kept_tokens_chars: usize,
    per_generation: usize,
    // Locked only while no Python code runs (the GIL is held throughout, so
    // another thread can take it only between those sections, never wait on it).
    generations: Mutex<Generations>,
}

/// What `bytes.split()` splits at: ASCII whitespace, vertical tab and form feed
/// included (`u8::is_ascii_whitespace` leaves out the vertical tab).
fn is_space(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn chunks(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(is_space).filter(|chunk| !chunk.is_empty())
}

/// A text's fields from the tokens of each of its chunks in turn, without the last
/// space; None as soon as a chunk has none.
fn joined<'a>(
    text: &[u8],
    tokens: impl Iterator<Item = Option<&'a Tokens>>,
) -> Option<(String, String)> {
    // Tokens are about as long as the text: room for them at once, not by doubling.
    let (mut stem, mut fold) = (
        String::with_capacity(text.len()),
        String::with_capacity(text.len()),
    );
    for pair in tokens {
        let pair = pair?;
        stem.push_str(&pair.0);
        fold.push_str(&pair.1);
    }
    stem.pop();
    fold.pop();
    Some((stem, fold))
}

impl ChunkTable {
    fn locked(&self) -> MutexGuard<'_, Generations> {
        // A panic while locked leaves whole entries only: the tables stay usable.
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn keepable(&self, chunk: &[u8], tokens: &Tokens) -> bool {
        chunk.len() <= self.kept_chunk_bytes
            && tokens.0.chars().count() + tokens.1.chars().count() <= self.kept_tokens_chars
    }

    /// Keep these entries in the newest generation, a new one once it is full.
    fn keep(&self, entries: Vec<(&[u8], Tokens)>) {
        let entries: Vec<_> = entries
            .into_iter()
            .filter(|(chunk, tokens)| self.keepable(chunk, tokens))
            .take(self.per_generation)
            .collect();
        let mut generations = self.locked();
        if generations.newest.len() + entries.len() > self.per_generation {
            generations.older = std::mem::replace(&mut generations.newest, generation());
        }
        for (chunk, tokens) in entries {
            generations.newest.insert(chunk.into(), tokens);
        }
    }
}

#[pymethods]
impl ChunkTable {
    #[new]
    fn new(
        max_chars: usize,
        kept_chunk_bytes: usize,
        kept_tokens_chars: usize,
        per_generation: usize,
    ) -> Self {
        Self {
            max_chars,
            kept_chunk_bytes,
            kept_tokens_chars,
            per_generation,
            generations: Mutex::new(Generations::new()),
        }
    }

    /// Each text's `stem` and `fold` fields. `make` is given the chunks not known yet
    /// (a list of bytes, each once) and returns their spaced `stem` and `fold` tokens.
    fn analyse<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        make: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<(Bound<'py, PyString>, Bound<'py, PyString>)>> {
        // The first `max_chars` characters of each text, cut before any is encoded (a
        // huge text costs its slice, not its whole length)...
        let mut cut: Vec<Bound<'py, PyString>> = Vec::with_capacity(texts.len());
        for text in texts {
            cut.push(if text.len()? > self.max_chars {
                let max = isize::try_from(self.max_chars)?;
                text.get_item(PySlice::new(py, 0, max, 1))?
                    .cast_into::<PyString>()?
            } else {
                text
            });
        }
        // ...in UTF-8 as Python's `encode("utf-8", "surrogatepass")` makes it: the
        // string's own UTF-8 where it has one, the encoding only for lone surrogates.
        let mut encoded: Vec<Cow<'_, [u8]>> = Vec::with_capacity(cut.len());
        for text in &cut {
            encoded.push(match text.to_str() {
                Ok(utf8) => Cow::Borrowed(utf8.as_bytes()),
                Err(_) => Cow::Owned(
                    text.call_method1("encode", ("utf-8", "surrogatepass"))?
                        .extract::<Vec<u8>>()?,
                ),
            });
        }

        let mut fields: Vec<Option<(String, String)>> = Vec::with_capacity(encoded.len());
        // Per text not made of known chunks: each chunk's tokens, if known.
        let mut pending: Vec<(usize, Vec<Option<Tokens>>)> = Vec::new();
        let mut unknown: Vec<&[u8]> = Vec::new();
        let mut promoted: Vec<(&[u8], Tokens)> = Vec::new();
        {
            let generations = self.locked();
            let mut seen: HashSet<&[u8], Seeded> = HashSet::with_hasher(seeded());
            for (n, text) in encoded.iter().enumerate() {
                let found = chunks(text).map(|chunk| generations.newest.get(chunk));
                if let Some(field) = joined(text, found) {
                    fields.push(Some(field));
                    continue;
                }
                fields.push(None);
                let tokens = chunks(text)
                    .map(|chunk| {
                        if let Some(tokens) = generations.newest.get(chunk) {
                            return Some(Arc::clone(tokens));
                        }
                        let first = seen.insert(chunk);
                        if let Some(tokens) = generations.older.get(chunk) {
                            if first {
                                promoted.push((chunk, Arc::clone(tokens)));
                            }
                            return Some(Arc::clone(tokens));
                        }
                        if first {
                            unknown.push(chunk);
                        }
                        None
                    })
                    .collect();
                pending.push((n, tokens));
            }
        }

        let mut made: HashMap<&[u8], Tokens, Seeded> =
            HashMap::with_capacity_and_hasher(unknown.len(), seeded());
        if !unknown.is_empty() {
            let given = PyList::new(py, unknown.iter().map(|chunk| PyBytes::new(py, chunk)))?;
            let (stems, folds): (Vec<String>, Vec<String>) = make.call1((given,))?.extract()?;
            if stems.len() != unknown.len() || folds.len() != unknown.len() {
                return Err(PyValueError::new_err(
                    "make returned tokens for other chunks",
                ));
            }
            for ((chunk, stem), fold) in unknown.iter().zip(stems).zip(folds) {
                made.insert(chunk, Arc::new((stem.into(), fold.into())));
            }
        }
        for (n, tokens) in &pending {
            let text = &encoded[*n];
            let all = chunks(text)
                .zip(tokens)
                .map(|(chunk, known)| known.as_ref().or_else(|| made.get(chunk)));
            // Every chunk not known then is in `made`, from the same locked section.
            fields[*n] = Some(joined(text, all).expect("a chunk neither known nor made"));
        }
        promoted.extend(
            unknown
                .iter()
                .map(|chunk| (*chunk, Arc::clone(&made[chunk]))),
        );
        if !promoted.is_empty() {
            self.keep(promoted);
        }

        Ok(fields
            .into_iter()
            .map(|field| {
                let (stem, fold) = field.unwrap_or_default();
                (PyString::new(py, &stem), PyString::new(py, &fold))
            })
            .collect())
    }

    /// The chunks kept, newest generation first (for tests).
    fn kept<'py>(&self, py: Python<'py>) -> (Vec<Bound<'py, PyBytes>>, Vec<Bound<'py, PyBytes>>) {
        // Copied out first: no Python object is made while the table is locked.
        let (newest, older): (Vec<Chunk>, Vec<Chunk>) = {
            let generations = self.locked();
            (
                generations.newest.keys().cloned().collect(),
                generations.older.keys().cloned().collect(),
            )
        };
        let objects = |keys: Vec<Chunk>| keys.iter().map(|key| PyBytes::new(py, key)).collect();
        (objects(newest), objects(older))
    }

    /// Forget every kept chunk.
    fn clear(&self) {
        *self.locked() = Generations::new();
    }
}

#[pymodule]
fn _chunks(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<ChunkTable>()
}
