"""Keyless local mode: only while no key was ever created, only on loopback."""

from __future__ import annotations

from pathlib import Path

from facedb.domain import AuthMode, Role
from tests.factories import make_settings, started


def test_revoking_every_key_never_brings_keyless_mode_back(url: str, tmp_path: Path) -> None:
    db = started(make_settings(tmp_path, url))
    assert db.keys.auth_mode(loopback=True) is AuthMode.KEYLESS_LOCAL
    assert db.keys.auth_mode(loopback=False) is AuthMode.KEYS
    key, _ = db.keys.create(Role.ADMIN, "only")
    assert db.keys.auth_mode(loopback=True) is AuthMode.KEYS
    db.keys.revoke(key.id)
    assert db.keys.auth_mode(loopback=True) is AuthMode.KEYS
    db.close()
