"""Biometric data sealed at rest: photo bytes, crop JPEGs and embedding vectors under AES-GCM.

A data key is 256 random bits, kept base64-encoded in the file ``FACEDB_DATA_KEY_FILE`` names,
one key per line: the first line seals what is written; the lines after it are earlier keys,
kept so rows sealed under them still open (``facedb keys rotate-data-key`` re-seals those
rows under the first key, after which the old lines can go). Each sealed value is

    MAGIC (4 bytes) | key id (8 bytes: the start of the key's SHA-256) | nonce (12) | ciphertext+tag

with a fresh random nonce per value and the column's name as associated data (a value moved
to another column does not open). MAGIC starts with a NUL byte, which no JPEG, PNG or WebP
file and no unit-length float32 vector starts with, so a plaintext row (written before
sealing was turned on) is told apart and still read; the next rotation seals it.

No key file: values are written in plaintext, and a sealed value refuses to open with an
error naming the setting, never garbage.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from facedb.config import Settings
from facedb.errors import DataKeyError

MAGIC = b"\x00FDB"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:KEY_ID_BYTES]


def is_sealed(value: bytes) -> bool:
    return value[: len(MAGIC)] == MAGIC


def sealed_key_id(value: bytes) -> str:
    """Return the hex id of the key a sealed value was sealed under."""
    return value[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES].hex()


@dataclass(frozen=True)
class Keyring:
    """The data keys of this process: the first seals, every one opens."""

    keys: tuple[bytes, ...]

    @classmethod
    def read(cls, path: Path) -> Keyring:
        """Read a key file; raise DataKeyError saying what is wrong with it."""
        try:
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise DataKeyError(
                f"cannot read the data key file {path} (FACEDB_DATA_KEY_FILE): {exc.strerror}"
            ) from None
        keys = []
        for number, line in enumerate(lines, 1):
            try:
                key = base64.b64decode(line, validate=True)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise DataKeyError(
                    f"line {number} of {path} is not a base64-encoded 256-bit key; write a new "
                    "file with `facedb keys new-data-key FILE`"
                )
            keys.append(key)
        if not keys:
            raise DataKeyError(f"{path} holds no key; write one with `facedb keys new-data-key`")
        return cls(tuple(keys))

    @property
    def current_id(self) -> str:
        return key_id(self.keys[0]).hex()

    def seal(self, plaintext: bytes, column: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        body = AESGCM(self.keys[0]).encrypt(nonce, plaintext, column.encode())
        return MAGIC + key_id(self.keys[0]) + nonce + body

    def open(self, value: bytes, column: str) -> bytes:
        wanted = value[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]
        for key in self.keys:
            if key_id(key) == wanted:
                nonce = value[len(MAGIC) + KEY_ID_BYTES : HEADER]
                try:
                    return AESGCM(key).decrypt(nonce, value[HEADER:], column.encode())
                except InvalidTag:
                    raise DataKeyError(
                        f"a sealed {column} value fails its integrity check: the row was altered "
                        "or moved from another column"
                    ) from None
        raise DataKeyError(
            f"a {column} value is sealed under data key {wanted.hex()}, which is not in "
            "FACEDB_DATA_KEY_FILE; give the key file it was sealed with (old keys stay on the "
            "lines after the first)"
        )


def read_keyring(settings: Settings) -> Keyring | None:
    """Return the keyring ``FACEDB_DATA_KEY_FILE`` names, or None when it is unset."""
    return Keyring.read(settings.data_key_file) if settings.data_key_file else None


def new_key_line() -> str:
    """Return a new key, base64-encoded, as a key file's line."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def write_new_key(path: Path) -> str:
    """Put a new key on the first line of ``path`` (earlier keys move down, still opening
    what they sealed); return its id. The file is created readable by its owner only."""
    earlier = path.read_text().strip() if path.exists() else ""
    text = new_key_line() + ("\n" + earlier if earlier else "") + "\n"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with os.fdopen(os.open(path, flags, 0o600), "w") as handle:
        handle.write(text)
    return Keyring.read(path).current_id


# --- the column type ---------------------------------------------------------------------
def install(engine: Engine, keyring: Keyring | None) -> None:
    """Give this engine's sealed columns their keyring (None: plaintext writes)."""
    engine.dialect.facedb_keyring = keyring  # type: ignore[attr-defined]


def keyring_of(dialect: Dialect) -> Keyring | None:
    return getattr(dialect, "facedb_keyring", None)


class Sealed(TypeDecorator[bytes]):
    """A binary column sealed with the engine's data key on the way in and opened on the way
    out; plaintext values (written before sealing, or with no key) read as they are."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        keyring = keyring_of(dialect)
        if value is None or keyring is None:
            return value
        return keyring.seal(bytes(value), self.column)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        value = bytes(value)
        if not is_sealed(value):
            return value
        keyring = keyring_of(dialect)
        if keyring is None:
            raise DataKeyError(
                f"{self.column} values are sealed (data key {sealed_key_id(value)}) and no "
                "FACEDB_DATA_KEY_FILE is set: set it to the key file they were sealed with"
            )
        return keyring.open(value, self.column)


SEALED_COLUMNS: Sequence[tuple[str, str]] = (
    # (table, column): what `facedb keys rotate-data-key` re-seals
    ("photos", "content"),
    ("faces", "crop_jpeg"),
    ("embeddings", "vector"),
)
