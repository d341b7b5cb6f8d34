"""Photos as they arrive: a named stream, read with a byte cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

from facedb.errors import EmptyImage, ImageTooLarge
from facedb.sizes import readable


@dataclass(frozen=True)
class Upload:
    """One photo to read: a file name for reports, a seekable stream, its date if known."""

    filename: str
    stream: BinaryIO
    taken_at: date | None = None
    date_sent: str | None = None  # what was sent for its date, when that was not a date

    def read(self, max_bytes: int) -> bytes:
        """Return the photo's bytes from the start, refusing it once it passes ``max_bytes``."""
        self.stream.seek(0)
        data = self.stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ImageTooLarge(f"{self.filename} is larger than {readable(max_bytes)}, the limit")
        if not data:
            raise EmptyImage(f"{self.filename} is empty")
        return data
