"""Request-scoped helpers shared by the routes."""

from __future__ import annotations

from fastapi import Request, UploadFile

from facedb.errors import EmptyImage, ImageTooLarge
from facedb.service.context import FaceDB


def facedb(request: Request) -> FaceDB:
    db: FaceDB = request.app.state.facedb
    return db


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """Return an uploaded file's bytes, refusing it as soon as it passes ``max_bytes``."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{upload.filename or 'the file'} is larger than {max_bytes} bytes")
    if not data:
        raise EmptyImage(f"{upload.filename or 'the file'} is empty")
    return data
