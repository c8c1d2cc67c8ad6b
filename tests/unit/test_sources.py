"""load_sources: the TOML config of feeds to poll."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.ingest.sources import Source, load_sources
from shared.configfiles import ConfigFileError
from shared.settings import LONGEST_INTERVAL_SECONDS

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "conf" / "sources.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
    return config


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    config = _write(
        tmp_path,
        """
[[sources]]
name = "local"
url = "feeds/a.xml"

[[sources]]
name = "parent"
url = "../shared/b.xml"
""",
    )
    local, parent = load_sources(config)
    assert local.url == str((tmp_path / "conf" / "feeds" / "a.xml").resolve())
    assert parent.url == str((tmp_path / "shared" / "b.xml").resolve())
    assert Path(local.url).is_absolute()


def test_urls_are_kept_as_written(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """
[[sources]]
name = "remote"
url = "https://andijonfk.uz/lenta.xml"
interval = 300
tags = ["sport"]
countries = ["UZ"]
language = "uz"
""",
    )
    (source,) = load_sources(config)
    assert source == Source(
        name="remote",
        url="https://andijonfk.uz/lenta.xml",
        interval=300,
        tags=("sport",),
        countries=("UZ",),
        language="uz",
    )


def test_defaults(tmp_path: Path) -> None:
    (source,) = load_sources(_write(tmp_path, '[[sources]]\nname = "n"\nurl = "http://e.org/f"\n'))
    assert source.kind is None  # recognised from the content at each poll
    assert source.interval == 900.0
    assert source.tags == ()
    assert source.countries == ()
    assert source.language is None


@pytest.mark.parametrize(
    "text",
    [
        '[[sources]]\nname = "n"\nurl = "http://e.org/f"\nlanguge = "ru"\n',  # typo'd key
        '[[sources]]\nname = "n"\nurl = "http://e.org/f"\n\n[extra]\nx = 1\n',  # top-level key
        '[[sources]]\nname = "n"\nurl = "http://e.org/f"\nkind = "podcast"\n',
        '[[sources]]\nname = ""\nurl = "http://e.org/f"\n',
        '[[sources]]\nname = "n"\nurl = "http://e.org/f"\ninterval = 0\n',
        '[[sources]]\nurl = "http://e.org/f"\n',
    ],
)
def test_invalid_config_is_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigFileError):
        load_sources(_write(tmp_path, text))


def test_unknown_key_error_names_the_key(tmp_path: Path) -> None:
    config = _write(tmp_path, '[[sources]]\nname = "n"\nurl = "http://e.org/f"\nlanguge = "ru"\n')
    with pytest.raises(ConfigFileError, match="languge"):
        load_sources(config)


def test_bundled_sample_sources_all_point_at_existing_files() -> None:
    sources = load_sources(SAMPLES / "sources.toml")
    assert [s.name for s in sources] == [
        "andijonfk.uz",
        "meduza.io",
        "heise.de",
        "noticias.uol.com.br",
        "nenoksa",
    ]
    for source in sources:
        path = Path(source.url)
        assert path.is_absolute()
        assert path.is_file(), source.url
        assert path.parent == (SAMPLES / "realdata").resolve()
    languages = {s.name: s.language for s in sources}
    assert languages["andijonfk.uz"] == "uz"
    assert languages["noticias.uol.com.br"] == "pt"


def test_a_source_may_say_what_it_is(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "n"\nurl = "http://e.org/sitemap.xml"\nkind = "sitemap"\n'
    (source,) = load_sources(_write(tmp_path, text))
    assert source.kind == "sitemap"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "sources: Field required"),
        ('[[sources]]\nname = "n"\nurl = "http://e.org/f"\ninterval = "300s"\n', "interval"),
        ('[[sources]]\nname = "n"\nname = "m"\nurl = "http://e.org/f"\n', "not TOML"),
    ],
)
def test_a_file_error_names_its_variable_and_path(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigFileError) as raised:
        load_sources(path)
    assert str(raised.value).startswith(f"CARAVAN_INGEST_SOURCES={path}: ")
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_file_names_its_variable_and_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=f"CARAVAN_INGEST_SOURCES={tmp_path}/none.toml"):
        load_sources(tmp_path / "none.toml")


@pytest.mark.parametrize("interval", ["inf", "nan", str(LONGEST_INTERVAL_SECONDS + 1)])
def test_an_interval_is_one_a_due_time_can_hold(tmp_path: Path, interval: str) -> None:
    # Longer, its due time read back as unreadable and the source was polled back to
    # back; infinite, ingest crashed (OverflowError).
    text = f'[[sources]]\nname = "n"\nurl = "http://e.org/f"\ninterval = {interval}\n'
    with pytest.raises(ConfigFileError, match="interval"):
        load_sources(_write(tmp_path, text))


def test_source_names_are_unique(tmp_path: Path) -> None:
    # Leases and due times are keyed by name: two sources of one name were polled as one.
    text = '[[sources]]\nname = "n"\nurl = "http://e.org/f"\n' * 2
    with pytest.raises(ConfigFileError, match=r"source names must be unique: \['n'\]"):
        load_sources(_write(tmp_path, text))


@pytest.mark.parametrize(("language", "code"), [("ru", "ru"), ("UZ", "uz"), ("uz-Latn", "uz")])
def test_a_language_is_published_as_its_code(tmp_path: Path, language: str, code: str) -> None:
    text = f'[[sources]]\nname = "n"\nurl = "http://e.org/f"\nlanguage = "{language}"\n'
    (source,) = load_sources(_write(tmp_path, text))
    assert source.language == code


def test_a_language_that_is_no_code_is_refused(tmp_path: Path) -> None:
    # It was published as written, on every article its pages name no language of:
    # "Russian (RU)" in events whose contract says ISO 639.
    text = '[[sources]]\nname = "n"\nurl = "http://e.org/f"\nlanguage = "Russian (RU)"\n'
    with pytest.raises(ConfigFileError, match="language must be an ISO 639 code"):
        load_sources(_write(tmp_path, text))
