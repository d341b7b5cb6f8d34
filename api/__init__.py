"""FaceDB's HTTP API (FastAPI)."""
