"""Re-seal every sealed column under the current data key, a batch per transaction.

Resumable without downtime: each batch commits on its own, a value already sealed under the
current key is left alone, so a run that is stopped (or killed) and started again carries on
where it was; services keep serving throughout (they open values under any key the key file
holds). Plaintext values (stored before sealing was turned on) are sealed on the way.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import LargeBinary, Table, select, tuple_, type_coerce, update

from facedb.errors import DataKeyError
from facedb.store.models import Base
from facedb.store.seal import SEALED_COLUMNS, Sealed, is_sealed, sealed_key_id
from facedb.store.unit import Store

BATCH_ROWS = 500


def reseal(
    store: Store, batch: int = BATCH_ROWS, after_batch: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Re-seal what is not sealed under the current key; return the rows re-sealed per
    column. ``after_batch(column, rows)`` is called after each committed batch."""
    keyring = store.keyring
    if keyring is None:
        raise DataKeyError(
            "no FACEDB_DATA_KEY_FILE is set: write a key file (`facedb keys new-data-key "
            "FILE`) and point FACEDB_DATA_KEY_FILE at it first"
        )
    current = keyring.current_id
    done: dict[str, int] = {}
    for table_name, column in SEALED_COLUMNS:
        table: Table = Base.metadata.tables[table_name]
        sealed = table.c[column].type
        assert isinstance(sealed, Sealed), f"{table_name}.{column} is not a sealed column"
        name = sealed.column  # the name the column seals with: its associated data
        keys = list(table.primary_key.columns)
        raw = type_coerce(table.c[column], LargeBinary).label("raw")
        done[name], last = 0, None
        while True:
            with store.engine.begin() as connection:
                query = select(*keys, raw).order_by(*keys).limit(batch)
                if last is not None:
                    query = query.where(tuple_(*keys) > tuple_(*last))
                rows = connection.execute(query).all()
                if not rows:
                    break
                changed = 0
                for row in rows:
                    value = bytes(row.raw)
                    if is_sealed(value) and sealed_key_id(value) == current:
                        continue
                    plain = keyring.open(value, name) if is_sealed(value) else value
                    where = [k == row[i] for i, k in enumerate(keys)]
                    connection.execute(update(table).where(*where).values({column: plain}))
                    changed += 1
                last = tuple(rows[-1][: len(keys)])
            done[name] += changed
            if after_batch is not None:
                after_batch(name, changed)
    return done
