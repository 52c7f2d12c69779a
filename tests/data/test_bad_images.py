# SPDX-License-Identifier: MIT
"""The bad-image corpus (tests/bad_inputs.py), one test per kind, through every decode path.

Each kind either decodes to the RGB pixels an independent conversion gives (CMYK, 16-bit, palette,
alpha, 1x1, EXIF-rotated, wrong extension), on the PIL, tensor, DALI-screen and both augmentation
paths and through a paths index built from a folder; or it is unreadable with its one-line
message, counted in the shared ReadCounter, logged by name, and replaced by the next entry.
"""

from __future__ import annotations

import io
import logging
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from solo_diversity.data import (
    ClassificationDataset,
    FastMultiView,
    MultiViewTransform,
    PretrainDataset,
    ReadCounter,
    UnreadableImage,
    decode_image,
    parse_augmentations,
)
from solo_diversity.data.decode import dali_ready_bytes, decode_hwc
from solo_diversity.index import build_index, open_index, select_subset
from tests.bad_inputs import KINDS, ImageCase, cases_of, encode, image_corpus, noise

GOOD = {"a/good0.png": noise(9, 11, 3, 100), "b/good1.png": noise(13, 10, 3, 101)}
PLAIN = {  # a view that is the decoded image itself: no crop, no colour op, no flip
    "rrc": {"enabled": False},
    "color_jitter": {"prob": 0.0},
    "grayscale": {"prob": 0.0},
    "gaussian_blur": {"prob": 0.0},
    "solarization": {"prob": 0.0},
    "equalization": {"prob": 0.0},
    "horizontal_flip": {"prob": 0.0},
}
ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # normalisation that keeps [0, 1] units


def assert_pixels(case: ImageCase, got: np.ndarray, how: str) -> None:
    assert case.expected is not None
    assert got.shape == case.expected.shape, (case.name, how, got.shape)
    diff = np.abs(got.astype(int) - case.expected.astype(int)).max()
    assert diff <= case.tolerance, (case.name, how, diff)


def plain_views(case: ImageCase) -> list[np.ndarray]:
    """The image through both augmentation backends with a pass-through view."""
    assert case.expected is not None
    short = min(case.expected.shape[:2])
    specs = parse_augmentations([{"crop_size": short, "num_crops": 1, **PLAIN}])
    fast = FastMultiView(specs, ZERO, ONE).from_bytes(case.data)[0]
    reference = MultiViewTransform(specs, ZERO, ONE)(decode_image(case.data))[0]
    return [
        (view * 255).round().to(torch.uint8).permute(1, 2, 0).numpy() for view in (fast, reference)
    ]


def folder_subset(tmp_path: Path, cases: list[ImageCase]) -> tuple[object, dict[str, ImageCase]]:
    """A paths index over GOOD plus ``cases`` (in class folder a), built from the folder."""
    root = tmp_path / "images"
    files: dict[str, bytes] = {rel: encode_png(pixels) for rel, pixels in GOOD.items()}
    files.update({f"a/{case.name}": case.data for case in cases})
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    index = build_index("folder", tmp_path / "corpus.h5", dataset="corpus", root=root)
    return select_subset(open_index(index), -1), {f"a/{case.name}": case for case in cases}


def encode_png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    return encode(Image.fromarray(pixels), "PNG")


def expected_bad_reads(names: list[str], bad: set[str]) -> int:
    """Unreadable reads of one pass over the subset: each entry scans its run of bad entries."""
    n, total = len(names), 0
    for i in range(n):
        step = 0
        while names[(i + step) % n] in bad:
            step += 1
        total += step
    return total


@pytest.mark.parametrize("kind", KINDS)
def test_bad_image_kind(kind, tmp_path, caplog):
    cases = cases_of(kind)
    # 1. The decoders, one by one.
    for case in cases:
        if case.readable:
            assert_pixels(case, np.asarray(decode_image(case.data)), "decode_image")
            assert_pixels(case, decode_hwc(case.data).numpy(), "decode_hwc")
            ready, _ = dali_ready_bytes(case.data)  # what DALI decodes: native or transcoded
            assert_pixels(case, np.asarray(decode_image(ready)), "dali_ready_bytes")
            for view in plain_views(case):
                assert_pixels(case, view, "augmentation views")
        else:
            for decoder in (decode_image, decode_hwc, dali_ready_bytes):
                with pytest.raises(UnreadableImage) as err:
                    decoder(case.data)
                assert re.fullmatch(str(case.message), str(err.value)), (decoder, err.value)
                assert "\n" not in str(err.value)
    # 2. A paths index built from a folder holding them, read by the datasets.
    subset, by_name = folder_subset(tmp_path, cases)
    index = subset.index  # type: ignore[attr-defined]
    names = [index.entry_name(p) for p in range(len(index))]
    assert sorted(names) == sorted([*GOOD, *by_name])  # the builder indexes every file
    bad = {name for name, case in by_name.items() if not case.readable}
    counter = ReadCounter()
    dataset = ClassificationDataset(subset, np.asarray, counter)
    caplog.set_level(logging.WARNING, logger="solo_diversity")
    delivered = [dataset[i] for i in range(len(dataset))]
    for i, (pixels, _) in enumerate(delivered):
        name = names[i]
        if name in by_name and by_name[name].readable:
            assert_pixels(by_name[name], pixels, "ClassificationDataset")
        elif name in GOOD:
            assert np.array_equal(pixels, GOOD[name])
    assert counter.bad == expected_bad_reads(names, bad)
    assert counter.loaded == len(names)
    warned = {r.getMessage() for r in caplog.records if "unreadable image" in r.getMessage()}
    for name in bad:
        message = by_name[name].message
        assert any(re.fullmatch(rf"unreadable image {name} \({message}\); using the next entry", w)
                   for w in warned), (name, warned)  # fmt: skip
    assert len(warned) == len(bad)  # once each, and nothing readable named
    # 3. Pretraining views (random crops) on both backends: every item complete and finite.
    specs = parse_augmentations([{"crop_size": 8, "num_crops": 2}])
    for transform in (FastMultiView(specs, ZERO, ONE), MultiViewTransform(specs, ZERO, ONE)):
        views = PretrainDataset(subset, transform, ReadCounter())
        for i in range(len(views)):
            position, crops, _ = views[(i, 7)]
            assert index.entry_name(position) not in bad
            assert [tuple(c.shape) for c in crops] == [(3, 8, 8)] * 2
            assert all(bool(torch.isfinite(c).all()) for c in crops)


def test_16_bit_pngs_are_not_clipped():
    # The silent failure to rule out: 8-bit conversion clipping every 16-bit sample to 255.
    for case in cases_of("16-bit PNG"):
        out = np.asarray(decode_image(case.data))
        assert out.min() < 20 and out.max() > 235 and len(np.unique(out)) > 15, case.name


def test_exif_orientation_is_ignored_as_in_solo_learn():
    from PIL import Image

    (case,) = cases_of("EXIF-rotated")
    with Image.open(io.BytesIO(case.data)) as img:
        assert img.getexif()[0x0112] == 6  # the file does ask for a rotation
    assert decode_image(case.data).size == (16, 24)  # stored 16 x 24, not rotated to 24 x 16


def test_a_decompression_bomb_allocates_nothing():
    # Headers declaring 10^10 and 10^8 pixels: refused from the header, no pixel buffer.
    for case in cases_of("huge header"):
        tracemalloc.start()
        with pytest.raises(UnreadableImage, match="decompression bomb"):
            decode_image(case.data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20, (case.name, peak)


def test_a_bomb_below_pillows_own_limit_is_refused_too():
    # 9,500 x 9,500 (90.25 MP) is under Pillow's error threshold (2 x 89.5 MP: a warning only).
    from tests.bad_inputs import jpeg_with_size

    with pytest.raises(UnreadableImage, match=r"^9500x9500 = 90250000 pixels exceeds the limit"):
        decode_image(jpeg_with_size(9500, 9500))


def test_the_index_builder_takes_every_file_and_embeds_their_bytes(tmp_path, caplog):
    from tests.bad_inputs import write_corpus

    root = tmp_path / "corpus"
    written = write_corpus(root)
    (root / "c0" / "notes.txt").write_text("not an image and not named like one")
    paths = open_index(build_index("folder", tmp_path / "p.h5", dataset="x", root=root))
    assert sorted(paths.entry_name(p) for p in range(len(paths))) == sorted(written)
    caplog.set_level(logging.WARNING, logger="solo_diversity")
    embedded = open_index(build_index("folder", tmp_path / "e.h5", dataset="x", root=root,
                                      embed=True))  # fmt: skip
    stored = sorted(embedded.read_bytes(p) for p in range(len(embedded)))
    assert stored == sorted(case.data for case in written.values() if case.data)
    assert "skipped 1 entries that were empty or not valid utf-8" in caplog.text


def test_dali_decodes_the_screened_corpus_as_pillow_does():
    from nvidia.dali import fn, pipeline_def, types

    readable = [case for case in image_corpus() if case.readable]
    screened = [np.frombuffer(dali_ready_bytes(case.data)[0], np.uint8) for case in readable]

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def decode() -> object:
        encoded = fn.external_source(
            source=lambda info: screened[info.idx_in_epoch % len(screened)],
            batch=False,
            dtype=types.UINT8,
        )
        return fn.decoders.image(encoded, device="cpu", output_type=types.RGB,
                                 adjust_orientation=False)  # fmt: skip

    pipe = decode()
    pipe.build()
    for case in readable:
        (out,) = pipe.run()
        got = np.array(out[0])
        assert got.shape == case.expected.shape, case.name  # type: ignore[union-attr]
        diff = np.abs(got.astype(int) - case.expected.astype(int)).max()  # type: ignore[union-attr]
        assert diff <= max(case.tolerance, 1), (case.name, diff)  # libjpeg builds: one level


def mixed_folder(root: Path, digits: object, good: int) -> dict[str, ImageCase]:
    """``good`` real digits (32 px JPEGs) in class folders, plus one file of every corpus kind."""
    from tests.bad_inputs import write_corpus

    for position in range(good):
        label = int(digits.labels([position])[0])  # type: ignore[attr-defined]
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
        image = decode_image(digits.read_bytes(position)).resize((32, 32))  # type: ignore[attr-defined]
        image.save(root / f"c{label}" / f"{position}.jpg", quality=90)
    return write_corpus(root)


def test_pretraining_and_the_probe_over_a_folder_with_every_kind(
    compose_cfg, digits_indexes, tmp_path, caplog
):
    from hydra import compose, initialize_config_dir

    from solo_diversity.errors import UserError
    from solo_diversity.evaluation.linear import run_linear
    from solo_diversity.run.pretrain import run_pretrain
    from tests.conftest import CONFIG_DIR

    digits = open_index(digits_indexes["train"])
    corpus = mixed_folder(tmp_path / "train", digits, 224 - len(image_corpus()))
    unreadable = {name for name, case in corpus.items() if not case.readable}
    train = build_index("folder", tmp_path / "train.h5", dataset="digits", root=tmp_path / "train")
    assert len(open_index(train)) == 224  # 7 batches of 32: one pass reads every entry once
    run = [
        f"data.train_path={train}", "data.val_path=null", "optimizer.batch_size=32",
        "+backbone.kwargs.width=8", "budget.C=224", f"++data.index_cache={tmp_path}",
    ]  # fmt: skip
    caplog.set_level(logging.WARNING, logger="solo_diversity")
    result = run_pretrain(compose_cfg(overrides=[*run, "++data.max_bad_fraction=0.05"]))
    assert result.plan.N == 224 and result.ledger["images_seen"] == result.plan.C_eff == 224
    assert result.ledger["match"]
    named = set(re.findall(r"unreadable image (\S+) \(", caplog.text))
    assert named == unreadable  # each of the 7 named, no readable kind among them
    # 7 of 224 entries (3.1%) is over the default share of 1%: the run stops with one line.
    with pytest.raises(UserError) as err:
        run_pretrain(compose_cfg(overrides=run))
    assert re.fullmatch(
        r"\d+ of \d+ image reads failed \(\d+\.\d\d%\), more than max_bad_fraction=0\.01; "
        r"the log names each unreadable image",
        str(err.value),
    ), err.value
    # The probe reads the same folder (train) and a second one with every kind (val).
    mixed_folder(tmp_path / "val", open_index(digits_indexes["test"]), 40)
    val = build_index("folder", tmp_path / "val.h5", dataset="digits", split="test",
                      root=tmp_path / "val")  # fmt: skip
    caplog.clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.2"):
        cfg = compose(config_name="linear_div", overrides=[
            f"pretrained_feature_extractor='{result.checkpoint}'", f"data.val_path={val}",
            f"results={tmp_path / 'probe.jsonl'}", "max_epochs=1", "data.num_workers=0",
            "optimizer.batch_size=32",
        ])  # fmt: skip
    record = run_linear(cfg).record
    assert 0.0 <= record["accuracy"] <= 100.0
    named = set(re.findall(r"unreadable image (\S+) \(", caplog.text))
    assert named == unreadable  # read in train (same relative names in val)
