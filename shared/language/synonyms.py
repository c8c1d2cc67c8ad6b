"""The place and currency names of places.toml, looked up by any spelling or word form."""

from __future__ import annotations

import tomllib
from importlib.resources import files

from shared.language.analysis import declined_stems, stem_token, words
from shared.language.scripts import fold


def _keys(name: str) -> set[tuple[str, ...]]:
    # A name is found by its folded words ("ozbekiston") or their stems ("kazahsta"
    # for "Казахстана"), so inflected and differently spelled queries find it too.
    parts = words(name)
    return {tuple(fold(w) for w in parts), tuple(stem_token(w) for w in parts)}


class Synonyms:
    """Groups of names; `names_for` finds a word's groups by folded form or stem."""

    def __init__(self, groups: list[list[str]]) -> None:
        self.groups = groups
        index: dict[tuple[str, ...], dict[str, None]] = {}
        for group in groups:
            for name in group:
                # The stems of a name's cases too: a reader's "в Астане" names Astana.
                declined = {(s,) for s in declined_stems(name)} if len(words(name)) == 1 else set()
                for key in _keys(name) | declined:
                    index.setdefault(key, {}).update(dict.fromkeys(group))
        self._index = {key: tuple(names) for key, names in index.items()}

    @classmethod
    def parse(cls, text: str) -> Synonyms:
        table = tomllib.loads(text)
        return cls([list(names) for section in table.values() for names in section.values()])

    @classmethod
    def bundled(cls) -> Synonyms:
        return cls.parse(files("shared.language").joinpath("places.toml").read_text("utf-8"))

    def names_for(self, word: str) -> tuple[str, ...]:
        """Every name of the places and currencies `word` names; () when it names none."""
        found: dict[str, None] = {}
        for key in _keys(word):
            found.update(dict.fromkeys(self._index.get(key, ())))
        return tuple(found)
