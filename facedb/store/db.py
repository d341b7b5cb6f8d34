"""Engines, sessions and the migration check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from facedb.errors import DatabaseNotMigrated, DatabaseUnavailable

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def normalise_url(url: str) -> str:
    """Return the URL with an explicit driver (``postgresql://`` → psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def redacted(url: str) -> str:
    """Return the database URL without its password (for messages and logs)."""
    return make_url(normalise_url(url)).render_as_string(hide_password=True)


def make_engine(url: str, foreign_keys: bool = True) -> Engine:
    """Return an engine; SQLite gets WAL, foreign keys and a busy timeout.

    Migrations run with ``foreign_keys`` off on SQLite: changing a constraint there rebuilds
    the table, and dropping the old copy with enforcement on would cascade to its children.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        pragmas = _SQLITE_PRAGMAS if foreign_keys else _SQLITE_PRAGMAS[1:]
        event.listen(engine, "connect", lambda connection, _: _run(connection, pragmas))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


_SQLITE_PRAGMAS = ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536")


def _run(connection: Any, pragmas: tuple[str, ...]) -> None:
    cursor = connection.cursor()
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# --- migrations ---------------------------------------------------------------------------
def alembic_config(url: str) -> Any:
    """Return an Alembic Config for this repository's migrations and the given database."""
    from alembic.config import Config

    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    make_engine(url).dispose()  # creates the SQLite folder
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def require_migrated(engine: Engine, url: str) -> None:
    """Raise DatabaseNotMigrated (naming `facedb db upgrade`) unless at the head revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise DatabaseUnavailable(f"the database is unreachable: {exc.orig}") from exc
    if current != head:
        raise DatabaseNotMigrated(
            f"the database is at revision {current or 'none'}, the code needs {head}. "
            "Run `facedb db upgrade` first."
        )


def ping(engine: Engine) -> bool:
    """Return whether the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
