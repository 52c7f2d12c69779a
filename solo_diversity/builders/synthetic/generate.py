# SPDX-License-Identifier: MIT
"""The synthetic set of the paper's Figure 3: Stable Diffusion images of "A photo of a {class}".

This module owns generation: the pipeline and its scheduler, the prompts, the per-image seeds, the
split of classes into shards, resuming, and the final index. The paper used SD 2.1 with
DPMSolver++ (betas 0.00085 to 0.012, scaled_linear, order 2), guidance 7.5, 50 steps and 650
images per class; those are the defaults here.

Layout of ``--out``::

    synthetic.json                  the settings every shard must share (checked on resume)
    images/<class:04d>/<image:05d>.png
    manifest/shard-<K>-of-<M>.jsonl one line per written image: file, class, prompt, seed, ...

**Seeds.** Image ``i`` of class ``c`` under ``--seed s`` uses ``torch.Generator("cpu")`` seeded
with :func:`image_seed` ``(s, c, i)``: the first 8 bytes of BLAKE2b(``"s:c:i"``) shifted right by
one (63 bits). The noise is drawn on the CPU so it is the same whatever device denoises it.
**Batches** are fixed runs of ``--batch`` consecutive images of one class; a batch is always
generated whole, so a resumed run computes exactly what an uninterrupted one would (the same
floating-point operations) and its pixels are identical, up to the CPU kernels' own rounding: two
runs of one batch may move a rare value by one grey level (measured: 1 in 3,072), since oneDNN
picks kernels by memory alignment. Likewise an image regenerated alone, or in another batch.
**Images** are PNG: lossless, so the pixels on disk are the ones the seed reproduces, and the
set's only lossy step is the training loader's own. Each is written to a hidden temporary name,
fsync-ed and renamed, then recorded in the shard's manifest; an interrupted run leaves no file
under a final name that is incomplete, and a resumed run skips every image that is both in a
manifest and on disk.
**Shards** own the classes with ``class index % M == K``. **The index** (labels = class indices,
class names, or WNIDs when the class file has them, provenance in its ``source`` JSON and a
manifest beside it) is written by whichever
shard finishes last and sees every image done, or on demand by ``build synthetic --collect``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from solo_diversity.console import progress
from solo_diversity.errors import UserError
from solo_diversity.index.writer import IndexMeta, write_index

log = logging.getLogger(__name__)

PROMPT = "A photo of a {}"
SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "algorithm_type": "dpmsolver++",
    "solver_order": 2,
}
WEIGHTS_HINT = "stabilityai/stable-diffusion-2-1 saved with StableDiffusionPipeline.save_pretrained"
SETTINGS_NAME = "synthetic.json"
IMAGES_DIR = "images"
MANIFEST_DIR = "manifest"


@dataclass(frozen=True)
class Shard:
    """A process's share of the classes: those with ``class index % count == index``."""

    index: int
    count: int

    def owns(self, class_index: int) -> bool:
        return class_index % self.count == self.index

    @property
    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def image_seed(seed: int, class_index: int, image_index: int) -> int:
    """The generator seed of one image: 63 bits of BLAKE2b(``f"{seed}:{class}:{image}"``)."""
    key = f"{seed}:{class_index}:{image_index}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


@dataclass(frozen=True)
class Settings:
    """What every shard of one set shares; any change would change the pixels."""

    classes: tuple[str, ...]
    wnids: tuple[str, ...]
    per_class: int
    seed: int
    size: int
    steps: int
    guidance: float
    batch: int
    weights: str  # fingerprint of the pipeline folder (configs and weight sizes)

    def prompt(self, class_index: int) -> str:
        return PROMPT.format(self.classes[class_index])

    def batches(self, class_index: int) -> Iterator[list[int]]:
        """The fixed batches of one class: runs of ``batch`` consecutive image indices."""
        for lo in range(0, self.per_class, self.batch):
            yield list(range(lo, min(lo + self.batch, self.per_class)))

    def file(self, class_index: int, image_index: int) -> str:
        return f"{IMAGES_DIR}/{class_index:04d}/{image_index:05d}.png"


def weights_fingerprint(folder: Path) -> str:
    """A cheap identity of a diffusers folder: its JSON configs' text and its files' sizes.

    Hidden paths (a download tool's ``.cache``) are left out: they change without the weights.
    """
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        name = file.relative_to(folder)
        if not file.is_file() or any(part.startswith(".") for part in name.parts):
            continue
        digest.update(str(name).encode())
        digest.update(file.read_bytes() if file.suffix == ".json" else b"%d" % file.stat().st_size)
    return digest.hexdigest()[:16]


def check_weights(folder: str | Path) -> Path:
    """``folder`` if it holds a diffusers pipeline, else a one-line error saying what goes there."""
    path = Path(folder).expanduser()
    if not (path / "model_index.json").is_file():
        raise UserError(
            f"--weights {path}: no diffusers pipeline there (model_index.json missing); "
            f"place {WEIGHTS_HINT} in it"
        )
    return path


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def agree_settings(out: Path, settings: Settings) -> None:
    """Record ``settings`` in ``out``, or check that they match the ones already there."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / SETTINGS_NAME
    mine = json.loads(json.dumps(asdict(settings)))
    if path.is_file():
        theirs = json.loads(path.read_text())
        changed = sorted(k for k in mine if theirs.get(k) != mine[k])
        if changed:
            raise UserError(
                f"{out} was generated with other {', '.join(changed)} (see {path}); "
                "resume with the same settings or choose another --out"
            )
        return
    _atomic_text(path, json.dumps(mine, indent=1) + "\n")


def load_settings(out: Path) -> Settings:
    """The settings recorded in ``out`` (for ``--collect``)."""
    path = out / SETTINGS_NAME
    if not path.is_file():
        raise UserError(f"--out {out}: no {SETTINGS_NAME}; is it a synthetic set's folder?")
    raw = json.loads(path.read_text())
    return Settings(**{**raw, "classes": tuple(raw["classes"]), "wnids": tuple(raw["wnids"])})


def read_manifests(out: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """Records of images that are in a manifest and on disk, by ``(class, image)``.

    A last line cut short by a kill is ignored (its image is made again).
    """
    done: dict[tuple[int, int], dict[str, Any]] = {}
    for manifest in sorted((out / MANIFEST_DIR).glob("*.jsonl")):
        for line in manifest.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if (out / record["file"]).is_file():
                done[(record["class"], record["image"])] = record
    return done


class Manifest:
    """The append-only JSONL record of one shard, flushed after every image."""

    def __init__(self, out: Path, shard: Shard) -> None:
        self.path = out / MANIFEST_DIR / f"{shard.name}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():  # drop a line cut short by a kill before appending after it
            text = self.path.read_bytes()
            if text and not text.endswith(b"\n"):
                self.path.write_bytes(text[: text.rfind(b"\n") + 1])
        self._file = open(self.path, "a")  # noqa: SIM115 (closed by close())

    def add(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_png(image: Any, path: Path) -> None:
    """Save a PIL image as PNG under a hidden temporary name, fsync, rename onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            image.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_temporaries(out: Path, settings: Settings, shard: Shard) -> int:
    """Delete the temporary files a killed run of this shard left in its own class folders."""
    removed = 0
    for c in range(len(settings.classes)):
        if shard.owns(c):
            for tmp in (out / IMAGES_DIR / f"{c:04d}").glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


def load_pipeline(weights: str | Path, device: str = "cpu", dtype: Any = None) -> Any:
    """SD from a local diffusers folder, its scheduler replaced by DPMSolver++ (:data:`SCHEDULER`).

    The new scheduler is made ``from_config`` of the folder's own, so what the weights were
    trained with (``prediction_type``: SD 2.1 at 768 px predicts v, timestep spacing) is kept and
    only the betas and the solver are set. The safety checker stays when the weights ship one
    and is off only when they have none (SD 2.1 has none).
    """
    folder = check_weights(weights)
    try:
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
    except ImportError as err:
        raise UserError(f"build synthetic needs diffusers ({err}); pip install '.[synth]'") from err
    index = json.loads((folder / "model_index.json").read_text())
    extra: dict[str, Any] = {}
    if not any(index.get("safety_checker") or [None]):
        extra = {"safety_checker": None, "requires_safety_checker": False}
    pipe = StableDiffusionPipeline.from_pretrained(
        folder, torch_dtype=dtype, local_files_only=True, **extra
    )
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, **SCHEDULER)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate_batch(pipe: Any, settings: Settings, class_index: int, images: list[int]) -> Any:
    """Run the pipeline on one batch; returns its output (``.images``: PIL images)."""
    import torch

    generators = [
        torch.Generator("cpu").manual_seed(image_seed(settings.seed, class_index, i))
        for i in images
    ]
    return pipe(
        prompt=[settings.prompt(class_index)] * len(images),
        generator=generators,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance,
        height=settings.size,
        width=settings.size,
        output_type="pil",
    )


@dataclass(frozen=True)
class ShardResult:
    """What one run of a shard did."""

    generated: int
    skipped: int
    seconds: float
    index: Path | None  # the index, when this run found the whole set done and wrote it

    @property
    def images_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0


def build_shard(
    pipe: Any,
    settings: Settings,
    out: str | Path,
    shard: Shard,
    *,
    index_path: str | Path | None = None,
    dataset: str = "synthetic",
    after_image: Callable[[dict[str, Any]], None] | None = None,
) -> ShardResult:
    """Generate this shard's missing images, then write the index if the whole set is done.

    Args:
        pipe: a loaded pipeline (:func:`load_pipeline`).
        settings: the set's settings; they must match those already recorded in ``out``.
        out: the set's folder.
        shard: the classes this process makes.
        index_path: where the index goes (default ``out/index.h5``).
        dataset: the dataset name recorded in the index.
        after_image: called with each image's record after it is written (a test hook).

    Returns:
        Counts, time, and the index path when this run wrote it.
    """
    root = Path(out)
    agree_settings(root, settings)
    remove_temporaries(root, settings, shard)
    done = read_manifests(root)
    owned = [c for c in range(len(settings.classes)) if shard.owns(c)]
    total = len(owned) * settings.per_class
    skipped = sum(1 for c, _ in done if shard.owns(c))
    manifest, generated, start = Manifest(root, shard), 0, time.perf_counter()
    writers = ThreadPoolExecutor(max_workers=min(settings.batch, os.cpu_count() or 1))
    try:
        with progress(f"synthetic {shard.name}", total, completed=skipped) as advance:
            for c in owned:
                for images in settings.batches(c):
                    todo = [i for i in images if (c, i) not in done]
                    if not todo:
                        continue
                    output = generate_batch(pipe, settings, c, images)
                    flags = output.nsfw_content_detected or [None] * len(images)
                    made = [
                        (image, _record(settings, c, i, nsfw))
                        for i, image, nsfw in zip(images, output.images, flags, strict=True)
                        if i in todo
                    ]
                    # PNG encoding (zlib) releases the GIL: a batch's images encode in parallel.
                    list(writers.map(lambda m: write_png(m[0], root / m[1]["file"]), made))
                    for _, record in made:
                        manifest.add(record)
                        generated += 1
                        advance(1)
                        if after_image is not None:
                            after_image(record)
    finally:
        manifest.close()
        writers.shutdown()
    seconds = time.perf_counter() - start
    log.info(
        "%s: %d images made, %d already there, %.1f s", shard.name, generated, skipped, seconds
    )
    written = None
    if len(read_manifests(root)) == len(settings.classes) * settings.per_class:
        written = collect(root, index_path, dataset=dataset)
    return ShardResult(generated, skipped, seconds, written)


def _record(settings: Settings, c: int, i: int, nsfw: bool | None) -> dict[str, Any]:
    return {
        "file": settings.file(c, i),
        "class": c,
        "image": i,
        "name": settings.classes[c],
        "wnid": settings.wnids[c],
        "prompt": settings.prompt(c),
        "seed": image_seed(settings.seed, c, i),
        "steps": settings.steps,
        "guidance": settings.guidance,
        "size": settings.size,
        "nsfw": nsfw,
    }


def collect(
    out: str | Path, index_path: str | Path | None = None, *, dataset: str = "synthetic"
) -> Path:
    """Write the index of a finished set and the manifest of all its images beside it.

    Args:
        out: the set's folder.
        index_path: the index to write (default ``out/index.h5``); its manifest is
            ``<index>.manifest.jsonl``, one record per image in (class, image) order.
        dataset: the dataset name recorded in the index.

    Returns:
        The index path.

    The index's class names are the WNIDs when the class file gave one on every line, so that
    ``index union`` with an ImageNet-derived set (B) merges the classes; else the names. Either
    way the prompts' names are in the ``source`` JSON (``classes``) and the manifest.
    """
    root = Path(out)
    settings = load_settings(root)
    done = read_manifests(root)
    expected = len(settings.classes) * settings.per_class
    if len(done) < expected:
        raise UserError(
            f"{expected - len(done)} of {expected} images in {root} are not made yet; "
            "run the remaining shards, then build synthetic --collect"
        )
    target = Path(index_path) if index_path is not None else root / "index.h5"
    records = [done[key] for key in sorted(done)]
    source = {
        "builder": "synthetic",
        "prompt": PROMPT.replace("{}", "{class}"),
        "scheduler": {"name": "DPMSolverMultistepScheduler", **SCHEDULER},
        "seed_rule": "blake2b-8(f'{seed}:{class}:{image}') >> 1, torch.Generator('cpu')",
        "manifest": f"{target.name}.manifest.jsonl",
        **asdict(settings),
    }
    meta = IndexMeta(
        dataset=dataset,
        split="train",
        kind="paths",
        root=str(root.resolve()),
        seed=settings.seed,
        source=json.dumps(source),
        class_names=settings.wnids if all(settings.wnids) else settings.classes,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_text(
        target.with_name(f"{target.name}.manifest.jsonl"),
        "".join(json.dumps(r) + "\n" for r in records),
    )
    return write_index(((r["file"], r["class"]) for r in records), target, meta)
