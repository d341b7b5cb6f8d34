"""A separate process that commits a candidate pair (and so its webhook event) and then
starts delivering, for the kill -9 test.

Usage: python -m tests.integration._notifier URL DATA_DIR WEBHOOK_URL
Prints the pair id, flushed, once the pair and its event are committed; then runs the sender
until killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from facedb.domain import PersonStatus
from tests.factories import add_person, add_synthetic_faces, make_settings, started, unit_vectors


def main() -> None:
    url, data_dir, webhook = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    settings = make_settings(data_dir.parent, url, webhook_url=webhook, webhook_timeout_s=3.0)
    db = started(settings, migrate=False)
    vector = unit_vectors(1, 7)
    missing = add_person(db, "Missing (kill -9)", status=PersonStatus.MISSING, external_ref="K-1")
    found = add_person(db, "Found (kill -9)", status=PersonStatus.FOUND, external_ref="K-2")
    add_synthetic_faces(db, missing, vector)
    add_synthetic_faces(db, found, vector)
    db.index.catch_up()
    db.crossmatch.sweep()
    (pair,) = db.review.page()[0]
    print(pair.id, flush=True)
    db.webhooks.start()
    time.sleep(600)  # killed by the test


if __name__ == "__main__":
    main()
