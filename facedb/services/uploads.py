"""Photos as they arrive: a named stream, read with a byte cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

from facedb.errors import EmptyImage, ImageTooLarge


@dataclass(frozen=True)
class Upload:
    """One photo to read: a file name for reports, a seekable stream, its date if known."""

    filename: str
    stream: BinaryIO
    taken_at: date | None = None

    def read(self, max_bytes: int) -> bytes:
        """Return the photo's bytes from the start, refusing it once it passes ``max_bytes``."""
        self.stream.seek(0)
        data = self.stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ImageTooLarge(f"{self.filename} is larger than {max_bytes} bytes")
        if not data:
            raise EmptyImage(f"{self.filename} is empty")
        return data
