"""`caravan keys create` writes each key file owner-only, in one step, and never through
whatever was at its name before."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services.keys import write_secret


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_key_file_is_owner_only(tmp_path: Path) -> None:
    key = tmp_path / "query.api-key"
    write_secret(key, "c2VjcmV0")
    assert key.read_text(encoding="utf-8") == "c2VjcmV0\n"
    assert _mode(key) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["query.api-key"]  # no temporary left


def test_an_existing_readable_key_file_is_replaced_owner_only(tmp_path: Path) -> None:
    key = tmp_path / "query.api-key"
    key.write_text("old\n", encoding="utf-8")
    key.chmod(0o644)
    write_secret(key, "new")
    assert key.read_text(encoding="utf-8") == "new\n"
    assert _mode(key) == 0o600


def test_a_symlink_at_the_name_is_replaced_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours\n", encoding="utf-8")
    elsewhere.chmod(0o644)
    key = tmp_path / "query.api-key"
    key.symlink_to(elsewhere)
    write_secret(key, "new")
    assert not key.is_symlink()
    assert key.read_text(encoding="utf-8") == "new\n"
    assert _mode(key) == 0o600
    assert elsewhere.read_text(encoding="utf-8") == "not yours\n"
    assert _mode(elsewhere) == 0o644


def test_the_mode_is_600_whatever_the_umask(tmp_path: Path) -> None:
    key = tmp_path / "query.api-key"
    previous = os.umask(0o277)  # would leave 0o400
    try:
        write_secret(key, "new")
    finally:
        os.umask(previous)
    assert _mode(key) == 0o600


def test_a_failed_write_leaves_the_old_key_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "query.api-key"
    write_secret(key, "old")

    def full_disk(_: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_secret(key, "new")
    assert key.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["query.api-key"]
