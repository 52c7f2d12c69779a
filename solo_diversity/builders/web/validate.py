# SPDX-License-Identifier: MIT
"""Validation of downloaded images: it decodes in full, it is large enough, and it is RGB.

``img2dataset`` decodes with OpenCV, which accepts a truncated JPEG (it fills the rest with grey),
so each file is decoded again with Pillow, which refuses one. An image whose shorter side is under
``min_size`` is dropped. One that is not RGB (greyscale, CMYK) is converted and written beside
the download as ``<key>.rgb.jpg``, so that every image of the set has three channels. The
perceptual hash used by :mod:`.dedup` is computed here, while the image is open.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

OK = "ok"
BROKEN = "broken"
TOO_SMALL = "too_small"


@dataclass(frozen=True)
class Checked:
    """The verdict on one file: status, the file to index (maybe converted), size, phash."""

    status: str
    file: str
    width: int
    height: int
    phash: str  # 16 hex digits of imagehash.phash; "" when not decoded
    error: str = ""


def phash_hex(image: Image.Image) -> str:
    """The 64-bit DCT perceptual hash (imagehash.phash) as 16 hex digits."""
    import imagehash

    return str(imagehash.phash(image))


def _atomic_jpeg(image: Image.Image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)


def check_image(root: Path, file: str, min_size: int) -> Checked:
    """Decode ``root/file`` fully and judge it.

    Args:
        root: the folder the file name is relative to.
        file: the downloaded file, relative to ``root``.
        min_size: the smallest allowed shorter side, in px.

    Returns:
        A :class:`Checked`; ``file`` is the RGB copy when one had to be made.
    """
    try:
        with Image.open(root / file) as opened:
            opened.load()  # a truncated or corrupt file raises here
            image = opened.copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return Checked(BROKEN, file, 0, 0, "", f"{type(err).__name__}: {err}")
    width, height = image.size
    if min(width, height) < min_size:
        return Checked(TOO_SMALL, file, width, height, "", f"{width}x{height} < {min_size} px")
    if image.mode != "RGB":
        image = image.convert("RGB")
        file = str(Path(file).with_suffix(".rgb.jpg"))
        _atomic_jpeg(image, root / file)
    return Checked(OK, file, width, height, phash_hex(image))
