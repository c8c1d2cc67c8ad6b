"""Users and roles of the secure test instance, kept in its file realm and file roles.

The minimal distribution cannot hold API keys or native roles: both live in the
`.security` index, whose mapping needs the `pattern_capture` filter of the
`analysis-common` module that the minimal distribution lacks (Elasticsearch
answers 400 "Unknown filter type [pattern_capture]"). Its file realm and file
roles need no index, so the tests run each service as a user of that realm
holding exactly the role `caravan keys` gives the service's API key; only the
way the credential travels differs (Basic instead of ApiKey).

Elasticsearch re-reads these files when they change (every second here, see
`resource.reload.interval.high` in conftest.py).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import yaml

BOOTSTRAP = "caravan-bootstrap"


def pbkdf2_hash(password: str) -> str:
    """The file realm's `{PBKDF2}` hash: PBKDF2-HMAC-SHA512, 10,000 rounds, 32-byte salt and key."""
    salt = secrets.token_bytes(32)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 10_000, 32)
    return f"{{PBKDF2}}10000${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


class FileRealm:
    """Adds and removes users and roles in one instance's config directory."""

    def __init__(self, config: Path) -> None:
        self._config = config
        # The bootstrap user's line, written by deploy/local/elasticsearch.sh, is kept;
        # users a previous run left behind are not.
        lines = (config / "users").read_text().splitlines()
        self._users = dict(line.split(":", 1) for line in lines if line.startswith(f"{BOOTSTRAP}:"))
        self._user_roles: dict[str, str] = {BOOTSTRAP: "superuser"}
        self._roles: dict[str, Any] = {}

    def put_role(self, name: str, descriptor: dict[str, Any]) -> None:
        self._roles[name] = descriptor
        self._write_roles()

    def put_user(self, name: str, role: str) -> str:
        """Create or reset a user; returns its new random password."""
        password = secrets.token_urlsafe(24)
        self._users[name] = pbkdf2_hash(password)
        self._user_roles[name] = role
        self._write_users()
        return password

    def delete_role(self, name: str) -> None:
        self._roles.pop(name, None)
        self._write_roles()

    def delete_user(self, name: str) -> None:
        self._users.pop(name, None)
        self._user_roles.pop(name, None)
        self._write_users()

    def _write_roles(self) -> None:
        # The same descriptors as the role API takes, in block YAML: the node splits
        # the file into roles at unindented lines, so JSON would not do.
        self._write("roles.yml", yaml.safe_dump(self._roles, default_flow_style=False))

    def _write_users(self) -> None:
        self._write("users", "".join(f"{n}:{h}\n" for n, h in self._users.items()))
        by_role: dict[str, list[str]] = {}
        for user, role in self._user_roles.items():
            by_role.setdefault(role, []).append(user)
        self._write(
            "users_roles", "".join(f"{role}:{','.join(users)}\n" for role, users in by_role.items())
        )

    def _write(self, name: str, text: str) -> None:
        # Written aside and renamed: the node never reads half a file.
        target = self._config / name
        temporary = target.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        stat = target.stat() if target.exists() else self._config.stat()
        os.chown(temporary, stat.st_uid, stat.st_gid)
        temporary.replace(target)
