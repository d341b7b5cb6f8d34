"""The store: one database, and a unit of work (one transaction) per use case.

A service opens ``with store.unit() as unit:`` and reaches each aggregate through a typed
repository (``unit.persons``, ``unit.photos``, ``unit.pairs``, …). The unit commits when
the block ends and rolls back when it raises; an unreachable database becomes
``DatabaseUnavailable``. All SQL lives in the repositories; services see records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from facedb.errors import Contention, DatabaseUnavailable, DataKeyError
from facedb.store import seal
from facedb.store.age_axes import AgeAxisRepository, AxisAttempts
from facedb.store.audit import AuditRepository
from facedb.store.changes import ChangeLog, Generations, SharedMarks
from facedb.store.crossmatch_runs import CrossmatchRuns
from facedb.store.db import make_engine, make_sessionmaker, ping, require_migrated
from facedb.store.embeddings import EmbeddingRepository
from facedb.store.keys import KeyRepository
from facedb.store.notes import NoteRepository
from facedb.store.outbox import OutboxRepository
from facedb.store.pair_archive import PairArchive
from facedb.store.pairs import PairRepository
from facedb.store.persons import PersonRepository
from facedb.store.photos import PhotoRepository
from facedb.store.qualities import FaceQualities
from facedb.store.register_faces import RegisterFaces
from facedb.store.seal import Keyring

log = logging.getLogger(__name__)

# PostgreSQL's codes for a transaction that lost to another: deadlock, serialization failure,
# lock not available. The loser may simply try again.
CONTENTION_CODES = frozenset({"40P01", "40001", "55P03"})
# The transaction-wide advisory lock that serialized units take on PostgreSQL.
SERIAL_LOCK = 0x46414345  # "FACE"


class Unit:
    """One transaction, with a repository per aggregate."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.persons = PersonRepository(session)
        self.photos = PhotoRepository(session)
        self.embeddings = EmbeddingRepository(session)
        self.changes = ChangeLog(session)
        self.generations = Generations(session)
        self.marks = SharedMarks(session)
        self.registers = RegisterFaces(session)
        self.pairs = PairRepository(session)
        self.archive = PairArchive(session)
        self.runs = CrossmatchRuns(session)
        self.audit = AuditRepository(session)
        self.keys = KeyRepository(session)
        self.notes = NoteRepository(session)
        self.outbox = OutboxRepository(session)
        self.age_axes = AgeAxisRepository(session)
        self.axis_attempts = AxisAttempts(session)
        self.qualities = FaceQualities(session)

    def rollback(self) -> None:
        """Undo what this unit wrote so far (it stays usable)."""
        self._session.rollback()


class Store:
    """The system of record: persons, photos, faces, embeddings, pairs, keys, the audit
    trail, the change log the indexes follow and the webhook outbox."""

    def __init__(self, url: str, keyring: Keyring | None = None) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        seal.install(self.engine, keyring)  # photos, crops and embeddings sealed at rest
        self.keyring = keyring
        self._sessions: sessionmaker[Session] = make_sessionmaker(self.engine)

    @contextmanager
    def unit(self, serialized: bool = False) -> Iterator[Unit]:
        """Yield a unit of work that commits on success and rolls back on any error.

        A ``serialized`` unit waits for every other serialized one before it reads anything:
        the casework writes whose rules span several rows (a decision, a person's erasure,
        an imported decision: one link per person) take it, so two of them never check
        their rule against the same state. On SQLite it takes the write lock at its start
        (``BEGIN IMMEDIATE``: the reads come after it), on PostgreSQL a transaction-wide
        advisory lock (one lock, so one order: no deadlock between them).
        """
        session = self._sessions()
        try:
            if serialized:
                _serialize(session)
            yield Unit(session)
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            translated = _translated(exc)
            if translated is None:
                raise
            raise translated from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def reachable(self) -> bool:
        """Return whether the database answers a trivial query."""
        return ping(self.engine)

    def require_migrated(self) -> None:
        """Raise DatabaseNotMigrated (naming `facedb db upgrade`) unless at the head."""
        require_migrated(self.engine, self.url)

    def require_keys(self) -> None:
        """Raise DataKeyError at start-up, saying what to do, when stored data is sealed
        under a key this process lacks (or sealed at all and no key is set). Every row is
        counted (one query per sealed column), so a rotation stopped part-way, with old
        rows left under a key since removed from the file, is found."""
        held = {seal.key_id(k).hex() for k in self.keyring.keys} if self.keyring else set()
        lack = "no FACEDB_DATA_KEY_FILE is set" if self.keyring is None else "the key file lacks it"
        for (table, column), counts in self.sealed_key_counts().items():
            for sealed_by, rows in sorted(counts.items()):
                if sealed_by not in held:
                    raise DataKeyError(
                        f"{rows} stored {table}.{column} values are sealed under data key "
                        f"{sealed_by} and {lack}: point FACEDB_DATA_KEY_FILE at a key file "
                        "that holds it (the first line the current key, older keys after it)"
                    )

    def sealed_key_counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """Return, per sealed column, how many stored values each data key id sealed."""
        start, width = len(seal.MAGIC) + 1, seal.KEY_ID_BYTES  # SQL counts from 1
        out: dict[tuple[str, str], dict[str, int]] = {}
        with self.engine.connect() as connection:
            for table, column in seal.SEALED_COLUMNS:
                query = (
                    f"SELECT substr({column}, {start}, {width}), count(*) FROM {table} "
                    f"WHERE substr({column}, 1, {len(seal.MAGIC)}) = :magic GROUP BY 1"
                )
                rows = connection.execute(text(query), {"magic": seal.MAGIC})
                out[(table, column)] = {bytes(k).hex(): int(n) for k, n in rows}
        return out

    def close(self) -> None:
        self.engine.dispose()


def _serialize(session: Session) -> None:
    """Take the lock that serialized units share (see ``Store.unit``)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))
    else:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SERIAL_LOCK})


def _translated(exc: DBAPIError) -> Exception | None:
    """Return the domain error for a database failure, its details logged, not shown: the
    database's own text (tables, DETAIL lines) never reaches a caller."""
    code = getattr(exc.orig, "pgcode", None)
    if code not in CONTENTION_CODES and not isinstance(exc, OperationalError):
        return None
    log.warning("database error (%s): %s", code or type(exc.orig).__name__, exc.orig)
    if code in CONTENTION_CODES:
        return Contention(
            "another change to the same records was saved at the same moment; "
            "look at the record again and repeat the request if it still applies"
        )
    if isinstance(exc, OperationalError):
        return DatabaseUnavailable("the database is unreachable; try again shortly")
    return None
