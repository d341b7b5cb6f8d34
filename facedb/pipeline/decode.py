"""Safe decoding of untrusted photo bytes into an RGB array.

Sizes are checked from the header before any pixel is decoded, so a decompression bomb
(a small file that expands to gigapixels) is refused without allocating it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from facedb.errors import (
    EmptyImage,
    ImageTooLarge,
    NotAnImage,
    TruncatedImage,
    UnsupportedImageFormat,
)

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# Our own pixel cap runs first; Pillow's bomb guard is lifted so it never pre-empts it
# with a warning or an error of another type.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    """A decoded photo: ``rgb`` is HxWx3 uint8, upright (EXIF orientation applied)."""

    rgb: NDArray[np.uint8]
    format: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Return the decoded photo, or raise the ImageError subclass that says what is wrong."""
    if not data:
        raise EmptyImage("the file is empty")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the file has {len(data)} bytes; the limit is {max_bytes}")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImage("the file is not an image in a format FaceDB reads") from None
    except OSError as exc:
        raise TruncatedImage(f"the image header is damaged: {exc}") from None
    fmt = image.format or "unknown"
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedImageFormat(f"{fmt} images are not accepted; send JPEG, PNG or WebP")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise NotAnImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} ({width * height} pixels); the limit is {max_pixels}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        upright = ImageOps.exif_transpose(image)
        rgb = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the image data is truncated or corrupt: {exc}") from None
    return DecodedImage(rgb=np.ascontiguousarray(rgb), format=fmt)
