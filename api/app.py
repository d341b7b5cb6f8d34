"""The FastAPI application factory and its lifecycle."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.auth import KeylessPolicy
from api.metrics import Metrics, middleware
from api.routes import admin, persons, search
from facedb import __version__
from facedb.config import Settings, get_settings
from facedb.service.context import FaceDB

log = logging.getLogger("facedb.api")
TAIL_INTERVAL_S = 1.0
SNAPSHOT_INTERVAL_S = 60.0


def create_app(settings: Settings | None = None, db: FaceDB | None = None) -> FastAPI:
    """Return the application; it loads the models and the index when it starts."""
    settings = settings or get_settings()
    facedb = db or FaceDB(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        facedb.start(load_models=True)
        app.state.keyless = KeylessPolicy(facedb)
        if app.state.keyless.allows():
            log.warning(
                "no API keys exist and the service is bound to %s: requests without a key "
                "are admitted as admin (keyless local mode). Create keys with "
                "`facedb keys create --role admin` before exposing the service.",
                settings.host,
            )
        elif not app.state.keyless.loopback:
            log.info("bound to %s: every request needs an API key", settings.host)
        stop = threading.Event()
        tailer = threading.Thread(target=_tail, args=(facedb, stop), name="index-tail", daemon=True)
        tailer.start()
        try:
            yield
        finally:
            stop.set()
            tailer.join(timeout=5)
            facedb.close()

    app = FastAPI(
        title="FaceDB",
        version=__version__,
        description="Face identification database: enroll identities, search 1:N, verify 1:1.",
        lifespan=lifespan,
    )
    app.state.facedb = facedb
    app.state.metrics = Metrics()
    app.middleware("http")(middleware(app.state.metrics))
    errors.install(app)
    app.include_router(persons.router)
    app.include_router(search.router)
    app.include_router(admin.router)
    return app


def _tail(db: FaceDB, stop: threading.Event) -> None:
    """Follow other processes' writes, and snapshot the index now and then."""
    since_snapshot = 0.0
    while not stop.wait(TAIL_INTERVAL_S):
        try:
            db.index.catch_up()
            since_snapshot += TAIL_INTERVAL_S
            if since_snapshot >= SNAPSHOT_INTERVAL_S:
                db.index.save_if_dirty()
                since_snapshot = 0.0
        except Exception as exc:  # the database may be down; keep tailing
            log.warning("index tail: %s", exc)
