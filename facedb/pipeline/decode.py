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
from facedb.sizes import readable

# Our own pixel cap runs first; Pillow's bomb guard is lifted so it never pre-empts it
# with a warning or an error of another type.
Image.MAX_IMAGE_PIXELS = None


MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
SUPPORTED_FORMATS = frozenset(MEDIA_TYPES)
# Photos already stored (re-embedding) or shipped (checks at install) were admitted under
# the caps in force then, or need none: decoded as they are.
NO_CAP = 1 << 62


@dataclass(frozen=True)
class ImageHeader:
    """What a photo's header says, read without decoding a pixel."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


@dataclass(frozen=True)
class DecodedImage:
    """A decoded photo: ``bgr`` is HxWx3 uint8 (OpenCV's channel order), upright."""

    bgr: NDArray[np.uint8]
    header: ImageHeader

    @property
    def format(self) -> str:
        return self.header.format

    @property
    def rgb(self) -> NDArray[np.uint8]:
        return self.bgr[:, :, ::-1]

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])


def read_header(data: bytes, max_bytes: int, max_pixels: int) -> ImageHeader:
    """Return the photo's format and size, or raise the ImageError that refuses it."""
    return _open(data, max_bytes, max_pixels)[1]


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Return the decoded photo, or raise the ImageError subclass that says what is wrong.

    The pixels are unpacked straight into BGR order: besides Pillow's own image, one
    full-size buffer is made, and none is copied to rotate or swap channels.
    """
    image, header = _open(data, max_bytes, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
        ImageOps.exif_transpose(image, in_place=True)  # no copy when upright already
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        packed = image.tobytes("raw", "BGR")
        del image
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the image data is truncated or corrupt: {exc}") from None
    bgr = np.frombuffer(packed, dtype=np.uint8).reshape(height, width, 3)
    return DecodedImage(bgr=bgr, header=header)


def _open(data: bytes, max_bytes: int, max_pixels: int) -> tuple[Image.Image, ImageHeader]:
    if not data:
        raise EmptyImage("the file is empty")
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"the file takes {readable(len(data))}; the limit is {readable(max_bytes)}"
        )
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImage("the file is not an image in a format FaceDB reads") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # a plugin's own complaint
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
    return image, ImageHeader(fmt, width, height)
