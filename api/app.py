"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from facedb import __version__
from facedb.config import get_settings
from facedb.provision import model_status


def create_app() -> FastAPI:
    """Return the application, configured from the settings."""
    settings = get_settings()
    app = FastAPI(title="FaceDB", version=__version__)

    @app.get("/v1/health")
    def health() -> dict[str, object]:
        models = model_status(settings.models_path, settings.detector, verify=False)
        return {"status": "ok", "models": {m.name: m.valid for m in models}}

    return app
