# SPDX-License-Identifier: MIT
"""Decoding encoded image bytes into RGB PIL images, and the error for images that cannot be.

This module owns the one place where bytes from an index become pixels: every colour mode is
normalised to 8-bit RGB (alpha is composited on white), and anything that is not a complete,
reasonably sized image raises :class:`UnreadableImage` so that datasets can count and skip it.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

#: Largest accepted image, in pixels (width x height): Pillow's own decompression-bomb threshold
#: (~89.5 MP, e.g. 9,459 x 9,459). Far above any photo in ImageNet or YFCC100M, far below what
#: would exhaust a DataLoader worker's memory.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_WHITE = (255, 255, 255)


class UnreadableImage(Exception):
    """Bytes that give no usable image: empty, truncated, corrupt, not an image, or too big."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparent pixels become white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16/32-bit grey: Pillow's convert clips at 255, so rescale the range instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _too_many_pixels(pixels: int | str, max_pixels: int) -> UnreadableImage:
    return UnreadableImage(
        f"{pixels} pixels exceeds the limit of {max_pixels} (a decompression bomb is never decoded)"
    )


@contextlib.contextmanager
def _as_unreadable(max_pixels: int = MAX_PIXELS) -> Iterator[None]:
    """Turn every way Pillow reports a bad image into :class:`UnreadableImage`."""
    try:
        with warnings.catch_warnings():
            # Pillow warns past its own limit; the explicit check in _open decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except UnreadableImage:
        raise
    except Image.UnidentifiedImageError as err:
        raise UnreadableImage("not an image in a format Pillow reads") from err
    except Image.DecompressionBombError as err:
        # Pillow refuses twice its limit while parsing the header, before _open can look.
        found = re.search(r"\((\d+) pixels\)", str(err))
        raise _too_many_pixels(found.group(1) if found else "more", max_pixels) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # UnidentifiedImageError and "image file is truncated" are OSErrors.
        raise UnreadableImage(f"{type(err).__name__}: {err}") from err


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Parse the header only; reject empty data and images over ``max_pixels`` before decoding."""
    if not data:
        raise UnreadableImage("zero bytes")
    img = Image.open(io.BytesIO(data))
    width, height = img.size
    if width * height > max_pixels:
        raise _too_many_pixels(f"{width}x{height} = {width * height}", max_pixels)
    return img


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode encoded image bytes (JPEG, PNG, WebP, ...) into an RGB PIL image.

    Grayscale, palette, CMYK and 16-bit images are converted to RGB (a 16-bit grey sample v
    becomes round(v / 257), a 16-bit RGB one its high byte, Pillow's: at most one level apart);
    images with alpha are composited on a white background. Multi-frame files give their first
    frame. EXIF orientation is not applied: solo-learn's loaders (torchvision's ``ImageFolder``
    and its H5 dataset) read ``Image.open(...).convert("RGB")``, which ignores it too. A JPEG whose
    entropy-coded data is damaged decodes with garbled blocks, as in every JPEG viewer and in
    solo-learn; only a broken header, marker or truncation makes it unreadable.

    Args:
        data: the encoded file contents.
        max_pixels: largest accepted width x height (default :data:`MAX_PIXELS`, ~89.5 MP); larger
            images are treated as decompression bombs and never decoded.

    Returns:
        A fully loaded ``PIL.Image.Image`` in mode ``"RGB"``.

    Raises:
        UnreadableImage: zero bytes, truncated or corrupt data, not an image, or more than
            ``max_pixels``.

    """
    with _as_unreadable(max_pixels):
        img = _open(data, max_pixels)
        img.load()
        return _to_rgb(img)


def decode_hwc(data: bytes, *, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """The pixels of :func:`decode_image` as an (H, W, 3) uint8 tensor, faster for RGB JPEGs.

    An RGB JPEG goes through torchvision's libjpeg-turbo decoder straight into a tensor (about 25%
    faster than Pillow plus its array export; the same library, so the same pixels up to one
    level). Should that decoder refuse the bytes, :func:`decode_image` decides, so exactly the
    images Pillow rejects raise (on 400 randomly truncated or corrupted JPEGs the two decoders
    accepted and rejected the same files).

    Raises:
        UnreadableImage: exactly when :func:`decode_image` raises it.

    """
    with _as_unreadable(max_pixels):
        header = _open(data, max_pixels)
        if header.format == "JPEG" and header.mode == "RGB":
            try:
                chw = decode_jpeg(
                    torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB
                )
                return chw.permute(1, 2, 0)  # decoded HWC: a view, no copy
            except RuntimeError:
                pass  # let Pillow decide (it raises UnreadableImage below, or decodes)
    return torch.from_numpy(np.array(decode_image(data, max_pixels=max_pixels)))


def _is_16_bit_png(img: Image.Image, data: bytes) -> bool:
    """A PNG of 16 bits per sample (Pillow opens 16-bit RGB as mode RGB, its high bytes)."""
    return img.format == "PNG" and data[24:25] == b"\x10"  # IHDR bit depth


#: (format, mode) pairs whose bytes DALI's decoder turns into the same RGB pixels as
#: :func:`decode_image`; everything else (alpha, CMYK, 16-bit, GIF, ...) is transcoded first.
#: (DALI rounds a 16-bit sample to v / 257 where Pillow keeps its high byte: up to one level apart.)
DALI_NATIVE = frozenset({("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGB"), ("PNG", "L")})


def dali_ready_bytes(data: bytes, *, max_pixels: int = MAX_PIXELS) -> tuple[bytes, bool]:
    """Screen encoded bytes before DALI decodes them, since DALI cannot skip a bad image.

    A DALI pipeline stops for good at the first image its decoder rejects, and it decodes some
    images that Pillow rejects; so the feed decides with Pillow, exactly as :func:`decode_image`
    does. A JPEG is checked with a 1/8-scale (DCT-domain) decode, which reads the whole
    entropy-coded stream (so truncation and corruption surface) at ~60% of a full decode's cost;
    a PNG is decoded in full. Anything DALI would render differently from :func:`decode_image`
    (alpha, CMYK, 16-bit, GIF, ...) is decoded here and handed over as a quickly compressed PNG.

    Args:
        data: the encoded file contents.
        max_pixels: as for :func:`decode_image`.

    Returns:
        ``(bytes for DALI, native)``: ``native`` is True when they are the original bytes.

    Raises:
        UnreadableImage: exactly when :func:`decode_image` raises it.

    """
    with _as_unreadable(max_pixels):
        img = _open(data, max_pixels)
        native = (
            (img.format, img.mode) in DALI_NATIVE
            and "transparency" not in img.info
            and not _is_16_bit_png(img, data)
        )
        if native:
            if img.format == "JPEG":
                img.draft(img.mode, (-(-img.size[0] // 8), -(-img.size[1] // 8)))
            img.load()
            return data, True
    out = io.BytesIO()
    decode_image(data, max_pixels=max_pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue(), False
