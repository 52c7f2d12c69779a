# SPDX-License-Identifier: MIT
import numpy as np
import pytest
from PIL import Image

from solo_diversity.data import MAX_PIXELS, UnreadableImage, decode_image


def test_rgb_jpeg(images):
    img = decode_image(images.encode(images.noise_rgb((20, 16), 0), "JPEG"))
    assert img.mode == "RGB" and img.size == (20, 16)


def test_grayscale_png_becomes_grey_rgb(images):
    img = decode_image(images.encode(Image.new("L", (5, 4), 77), "PNG"))
    assert img.mode == "RGB" and img.size == (5, 4)
    assert np.all(np.asarray(img) == 77)


def test_rgba_composited_on_white(images):
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[0, :, 3] = 255  # row 0 opaque red, row 1 fully transparent
    rgba[1, 0, 3] = 128  # one half-transparent red pixel
    arr = np.asarray(decode_image(images.encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert arr[0].tolist() == [[255, 0, 0]] * 3
    assert arr[1, 1:].tolist() == [[255, 255, 255]] * 2
    assert arr[1, 0, 0] == 255 and 125 <= arr[1, 0, 1] <= 129


def test_palette_with_transparency(images):
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    arr = np.asarray(decode_image(images.encode(pal, "PNG", transparency=0)))
    assert arr.tolist() == [[[255, 255, 255], [0, 255, 0]]]


def test_cmyk_jpeg(images):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    arr = np.asarray(decode_image(images.encode(cmyk, "JPEG", quality=95)))
    assert arr.shape == (8, 8, 3)
    r, g, b = arr[..., 0].mean(), arr[..., 1].mean(), arr[..., 2].mean()
    assert r > 200 and g < 60 and b < 60


def test_16_bit_grey_png_is_rescaled(images):
    arr16 = np.array([[0, 32896, 65535]], dtype=np.uint16)
    data = images.encode(Image.fromarray(arr16), "PNG")
    out = np.asarray(decode_image(data))
    assert out[0, :, 0].tolist() == [0, 128, 255] and out.shape == (1, 3, 3)


def test_zero_bytes():
    with pytest.raises(UnreadableImage, match="zero bytes"):
        decode_image(b"")


def test_truncated_jpeg(images):
    with pytest.raises(UnreadableImage):
        decode_image(images.truncated_jpeg())


def test_text_file():
    with pytest.raises(UnreadableImage):
        decode_image(b"hello, I am not an image\n")


def test_corrupt_png_body(images):
    data = bytearray(images.encode(images.noise_rgb((32, 32), 3), "PNG"))
    data[60:200] = bytes(140)  # zero out part of the compressed stream
    with pytest.raises(UnreadableImage):
        decode_image(bytes(data))


def test_decompression_bomb_limit(images):
    data = images.encode(Image.new("RGB", (64, 64)), "PNG")
    assert decode_image(data, max_pixels=64 * 64).size == (64, 64)
    with pytest.raises(UnreadableImage, match="4096 pixels exceeds the limit of 4095"):
        decode_image(data, max_pixels=64 * 64 - 1)
    assert MAX_PIXELS == 89_478_485


def test_decode_hwc_has_decode_images_pixels_and_rejects_the_same_files(images):
    from solo_diversity.data.decode import dali_ready_bytes, decode_hwc

    for name, data in images.good_files().items():
        reference = np.asarray(decode_image(data)).astype(int)
        fast = decode_hwc(data).numpy().astype(int)
        assert fast.shape == reference.shape and np.abs(fast - reference).max() <= 1, name
        ready, native = dali_ready_bytes(data)
        assert native == (name in ("rgb.jpg", "gray.png")), name
        assert native or np.array_equal(np.asarray(decode_image(ready)), reference), name
    for data in images.bad_files().values():
        for decoder in (decode_hwc, dali_ready_bytes):
            with pytest.raises(UnreadableImage):
                decoder(data)
