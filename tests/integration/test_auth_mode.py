"""Keyless local mode: only while no key was ever created, only on loopback."""

from __future__ import annotations

from pathlib import Path

from facedb.domain import AuthMode
from facedb.service.keys import auth_mode, create_key, revoke_key
from tests.factories import make_settings, started_db


def test_revoking_every_key_never_brings_keyless_mode_back(url: str, tmp_path: Path) -> None:
    db = started_db(make_settings(tmp_path, url))
    assert auth_mode(db, loopback=True) is AuthMode.KEYLESS_LOCAL
    assert auth_mode(db, loopback=False) is AuthMode.KEYS
    key, _ = create_key(db, "admin", "only")
    assert auth_mode(db, loopback=True) is AuthMode.KEYS
    revoke_key(db, key.id)
    assert auth_mode(db, loopback=True) is AuthMode.KEYS
    db.close()
