"""Settings defaults, trusted proxies, and the one vocabulary of roles and grants."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.auth import client_address
from facedb.config import Settings
from facedb.domain import GRANTS, Permission, Role, may


def test_models_default_to_a_cache_shared_by_every_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FACEDB_MODEL_DIR", raising=False)
    a = Settings(data_dir=tmp_path / "a", cache_dir=tmp_path / "cache")
    b = Settings(data_dir=tmp_path / "b", cache_dir=tmp_path / "cache")
    assert a.models_path == b.models_path == (tmp_path / "cache" / "models").resolve()
    own = Settings(data_dir=tmp_path / "a", model_dir=tmp_path / "elsewhere")
    assert own.models_path == (tmp_path / "elsewhere").resolve()


def scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 5555), "headers": headers}


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path)
    assert client_address(scope("127.0.0.1", "203.0.113.9"), plain) == "127.0.0.1"  # type: ignore[arg-type]
    proxied = Settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8, 127.0.0.1")
    assert client_address(scope("127.0.0.1", "203.0.113.9"), proxied) == "203.0.113.9"  # type: ignore[arg-type]
    # A client cannot forge its way past the proxy: the right-most untrusted hop counts.
    forged = scope("10.1.2.3", "198.51.100.1, 203.0.113.9, 10.0.0.5")
    assert client_address(forged, proxied) == "203.0.113.9"  # type: ignore[arg-type]
    assert client_address(scope("192.0.2.7", "203.0.113.9"), proxied) == "192.0.2.7"  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, trusted_proxies="not-an-address")


def test_every_role_has_its_grants_and_unknown_roles_have_none() -> None:
    assert set(GRANTS) == set(Role)
    assert may(Role.ADMIN, Permission.ADMIN) and may(Role.SEARCHER, Permission.SEARCH)
    assert not may(Role.ENROLLER, Permission.SEARCH) and not may(Role.SEARCHER, Permission.ENROLL)
    assert not may(None, Permission.READ)
