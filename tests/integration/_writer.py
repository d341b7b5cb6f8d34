"""A separate process that enrolls synthetic faces, for the multi-process and crash tests.

Usage: python -m tests.integration._writer URL DATA_DIR COUNT SEED [--save-at N] [--hang]
Prints each committed face id on its own line, flushed, as soon as the commit returns.
"""

from __future__ import annotations

import sys
import time

from tests.factories import add_person, add_synthetic_faces, make_settings, started, unit_vectors


def main() -> None:
    url, data_dir, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    save_at = int(sys.argv[sys.argv.index("--save-at") + 1]) if "--save-at" in sys.argv else -1
    from pathlib import Path

    settings = make_settings(Path(data_dir).parent, url)
    db = started(settings, migrate=False)
    person = add_person(db, f"writer-{seed}")
    for i, vector in enumerate(unit_vectors(count, seed)):
        (face_id,) = add_synthetic_faces(db, person, vector[None, :])
        db.index.catch_up()
        print(face_id, flush=True)
        if i == save_at:
            db.index.save(force=True)
    if "--hang" in sys.argv:
        time.sleep(600)  # killed by the test


if __name__ == "__main__":
    main()
