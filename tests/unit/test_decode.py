"""Decoding untrusted bytes: each kind of bad input gets its own error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facedb.errors import (
    EmptyImage,
    ImageTooLarge,
    NotAnImage,
    TruncatedImage,
    UnsupportedImageFormat,
)
from facedb.pipeline.decode import decode_image

LIMIT_BYTES = 10 * 1024 * 1024
LIMIT_PIXELS = 40_000_000


def encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    array[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    return Image.fromarray(array)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_supported_formats_decode_to_rgb(fmt: str) -> None:
    decoded = decode_image(encode(gradient(), fmt), LIMIT_BYTES, LIMIT_PIXELS)
    assert decoded.rgb.shape == (48, 64, 3)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.format == fmt


def test_grayscale_and_alpha_become_rgb() -> None:
    gray = decode_image(encode(gradient().convert("L"), "PNG"), LIMIT_BYTES, LIMIT_PIXELS)
    rgba = decode_image(encode(gradient().convert("RGBA"), "PNG"), LIMIT_BYTES, LIMIT_PIXELS)
    assert gray.rgb.shape == rgba.rgb.shape == (48, 64, 3)


def test_exif_orientation_is_applied() -> None:
    image = gradient(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    decoded = decode_image(encode(image, "JPEG", exif=exif), LIMIT_BYTES, LIMIT_PIXELS)
    assert decoded.rgb.shape == (64, 48, 3)


def test_empty_input() -> None:
    with pytest.raises(EmptyImage):
        decode_image(b"", LIMIT_BYTES, LIMIT_PIXELS)


def test_not_an_image() -> None:
    with pytest.raises(NotAnImage):
        decode_image(b"%PDF-1.4 this is not a photo" * 10, LIMIT_BYTES, LIMIT_PIXELS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_input(fmt: str) -> None:
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    with pytest.raises(TruncatedImage):
        decode_image(data[: len(data) // 2], LIMIT_BYTES, LIMIT_PIXELS)


@pytest.mark.parametrize("data", [b"P2", b"P2\nM\xf3", b"P6 -1 -1 255\n"])
def test_a_header_a_reader_chokes_on_is_a_400_not_a_crash(data: bytes) -> None:
    # Found by schemathesis: Pillow's PPM reader raises ValueError on a bad token.
    with pytest.raises((TruncatedImage, NotAnImage)):
        decode_image(data, LIMIT_BYTES, LIMIT_PIXELS)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_unsupported_format(fmt: str) -> None:
    with pytest.raises(UnsupportedImageFormat):
        decode_image(encode(gradient(), fmt), LIMIT_BYTES, LIMIT_PIXELS)


def test_too_many_bytes() -> None:
    data = encode(gradient(), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_bytes=len(data) - 1, max_pixels=LIMIT_PIXELS)


def test_decompression_bomb_refused_before_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = encode(Image.new("1", (20000, 20000)), "PNG", optimize=True)
    assert len(bomb) < LIMIT_BYTES  # small on disk, 400 megapixels once decoded
    loads: list[object] = []
    original_load = Image.Image.load

    def spying_load(self: Image.Image) -> object:
        loads.append(self)
        return original_load(self)

    monkeypatch.setattr(Image.Image, "load", spying_load)
    with pytest.raises(ImageTooLarge, match="20000x20000"):
        decode_image(bomb, LIMIT_BYTES, LIMIT_PIXELS)
    assert loads == []
