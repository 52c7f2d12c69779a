# SPDX-License-Identifier: MIT
"""``solo-div build synthetic``: the command line of the synthetic set builder.

:func:`add_synthetic_parser` adds the sub-command to the ``build`` group; the handler resolves the
arguments once (weights, classes, shard, device, dtype) into a
:class:`~solo_diversity.builders.synthetic.generate.Settings` and runs this process's shard.
Examples::

    solo-div build synthetic --weights sd21/ --classes in100.txt --out synth/ --seed 0
    torchrun --nproc-per-node 8 -m solo_diversity.builders.synthetic.cli build synthetic ...
    solo-div build synthetic --collect --out synth/ --index synth.h5

Each process makes the classes of its ``--shard K/M`` (default: from torchrun or SLURM), and the
last one to finish writes the index; ``--collect`` writes it again from what is on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from solo_diversity.entry import group_main
from solo_diversity.errors import UserError

if TYPE_CHECKING:
    from solo_diversity.builders.synthetic import generate as syn

# A copy of :data:`solo_diversity.builders.synthetic.generate.WEIGHTS_HINT` (a test keeps them
# equal): that module loads numpy and h5py, which ``--help`` does not need.
WEIGHTS_HINT = "stabilityai/stable-diffusion-2-1 saved with StableDiffusionPipeline.save_pretrained"


def parse_shard(text: str) -> syn.Shard:
    """``"K/M"`` as a shard; a bad value raises a one-line :class:`UserError`."""
    from solo_diversity.builders.synthetic import generate as syn  # numpy, h5py: on run

    k, sep, m = text.partition("/")
    if not (sep and k.strip().isdigit() and m.strip().isdigit()) or not 0 <= int(k) < int(m):
        raise UserError(f"--shard must be K/M with 0 <= K < M (e.g. 0/4), got {text!r}")
    return syn.Shard(int(k), int(m))


def _pair(env: Mapping[str, str], rank: str, size: str, offset: str = "") -> tuple[int, int]:
    if rank not in env or size not in env:
        return 0, 1
    return int(env[rank]) - int(env.get(offset, "0") or 0), int(env[size])


def shard_from_env(env: Mapping[str, str]) -> syn.Shard:
    """The shard a launcher gave this process.

    The process rank comes from torchrun (``RANK``/``WORLD_SIZE``), else from ``srun``
    (``SLURM_PROCID``/``SLURM_NTASKS``); a SLURM array (``SLURM_ARRAY_TASK_ID`` minus
    ``SLURM_ARRAY_TASK_MIN``, of ``SLURM_ARRAY_TASK_COUNT``) multiplies them, so an array of
    torchrun jobs shares the classes without overlap. Nothing set: the single shard 0/1.
    """
    from solo_diversity.builders.synthetic import generate as syn  # numpy, h5py: on run

    rank, world = _pair(env, "RANK", "WORLD_SIZE")
    if (rank, world) == (0, 1):
        rank, world = _pair(env, "SLURM_PROCID", "SLURM_NTASKS")
    task, tasks = _pair(
        env, "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"
    )
    shard = syn.Shard(task * world + rank, tasks * world)
    if not 0 <= shard.index < shard.count:
        raise UserError(f"launcher environment gives shard {shard.index}/{shard.count}")
    return shard


def read_classes(path: str | Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Class names and WNIDs from a file of ``name`` or ``wnid<TAB>name`` lines.

    Blank lines and lines starting with ``#`` are skipped. Returns ``(names, wnids)``; a WNID is
    ``""`` on a line without one.
    """
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--classes {file}: no such file (one class name a line, or wnid<TAB>name)")
    names, wnids = [], []
    for line in file.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        wnid, tab, name = line.partition("\t")
        names.append((name if tab else wnid).strip())
        wnids.append(wnid.strip() if tab else "")
    if not names:
        raise UserError(f"--classes {file} lists no classes")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"--classes {file} repeats {', '.join(repeated[:5])}")
    return tuple(names), tuple(wnids)


def resolve_device(name: str, env: Mapping[str, str]) -> str:
    """``auto``: the GPU of this process's local rank (``LOCAL_RANK``/``SLURM_LOCALID``) if any."""
    import torch

    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is visible")
    local = int(env.get("LOCAL_RANK", env.get("SLURM_LOCALID", "0")))
    return f"cuda:{local % torch.cuda.device_count()}"


def resolve_dtype(name: str, device: str) -> Any:
    """``auto``: fp16 on a GPU (the paper's batches), fp32 on a CPU (fp16 is slow there)."""
    import torch

    table = {"fp16": torch.float16, "fp32": torch.float32}
    if name == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if name not in table:
        raise UserError(f"--dtype must be auto, fp16 or fp32, got {name!r}")
    return table[name]


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Make SIGTERM (a scheduler's preemption) unwind like Ctrl-C, exiting 143.

    Unwinding removes the temporary file of the image being written and closes the manifest;
    without it SIGTERM would end the process on the spot (still safe, only untidier).
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _settings(args: argparse.Namespace, weights: Path) -> syn.Settings:
    from solo_diversity.builders.synthetic import generate as syn  # numpy, h5py: on run

    if args.classes is None:
        raise UserError("give --classes FILE (one class name a line, or wnid<TAB>name)")
    names, wnids = read_classes(args.classes)
    for flag in ("per_class", "size", "steps", "batch"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.size % 8:
        raise UserError(f"--size must be a multiple of 8 (the VAE's scale), got {args.size}")
    return syn.Settings(
        classes=names,
        wnids=wnids,
        per_class=args.per_class,
        seed=args.seed,
        size=args.size,
        steps=args.steps,
        guidance=args.guidance,
        batch=args.batch,
        weights=syn.weights_fingerprint(weights),
    )


def run_synthetic(args: argparse.Namespace) -> int:
    """Make this process's shard of the set (or, with ``--collect``, only write the index)."""
    from solo_diversity.builders.synthetic import generate as syn  # numpy, h5py: on run

    out = Path(args.out)
    if args.collect:
        path = syn.collect(out, args.index, dataset=args.dataset)
        print(f"wrote {path}")
        return 0
    if args.weights is None:
        raise UserError(f"give --weights DIR: a folder holding {syn.WEIGHTS_HINT}")
    weights = syn.check_weights(args.weights)
    settings = _settings(args, weights)
    shard = parse_shard(args.shard) if args.shard else shard_from_env(os.environ)
    device = resolve_device(args.device, os.environ)
    pipe = syn.load_pipeline(weights, device, resolve_dtype(args.dtype, device))
    with _sigterm_unwinds():
        try:
            result = syn.build_shard(
                pipe, settings, out, shard, index_path=args.index, dataset=args.dataset
            )
        except (KeyboardInterrupt, SystemExit) as stop:
            code = stop.code if isinstance(stop, SystemExit) else 128 + signal.SIGINT
            print(f"{shard.name} stopped; run the same command again to resume", file=sys.stderr)
            raise SystemExit(code) from None
    print(
        f"{shard.name}: {result.generated} images made ({result.images_per_second:.2f} images/s),"
        f" {result.skipped} already there"
    )
    if result.index is not None:
        print(f"wrote {result.index}")
    return 0


def add_synthetic_parser(build_subparsers: argparse._SubParsersAction) -> None:
    """Add ``synthetic`` to the ``solo-div build`` sub-parsers.

    Args:
        build_subparsers: the ``build`` group's sub-parsers.
    """
    p = build_subparsers.add_parser(
        "synthetic", help='Stable Diffusion images of "A photo of a {class}", sharded, resumable'
    )
    p.add_argument("--weights", help=f"local diffusers folder: {WEIGHTS_HINT}")
    p.add_argument("--classes", help="file of class names, one a line, or wnid<TAB>name")
    p.add_argument("--out", required=True, help="folder of images, manifests and settings")
    p.add_argument("--per-class", type=int, default=650, help="images per class (default 650)")
    p.add_argument("--seed", type=int, default=0, help="seeds every image and the index shuffle")
    p.add_argument("--size", type=int, default=768, help="height = width in px (default 768)")
    p.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    p.add_argument("--guidance", type=float, default=7.5, help="guidance scale (default 7.5)")
    p.add_argument("--batch", type=int, default=8, help="images per pipeline call (default 8)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (auto: the local rank's GPU)")
    p.add_argument("--dtype", default="auto", help="auto|fp16|fp32 (auto: fp16 on GPU, fp32 CPU)")
    p.add_argument(
        "--shard", help="K/M: make the classes with index %% M == K (default: torchrun/SLURM)"
    )
    p.add_argument("--index", help="the index to write when all is made (default OUT/index.h5)")
    p.add_argument("--dataset", default="synthetic", help="dataset name recorded in the index")
    p.add_argument(
        "--collect", action="store_true", help="only write the index from the images made"
    )
    p.set_defaults(func=run_synthetic)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m solo_diversity.builders.synthetic.cli build synthetic ...`` (for torchrun)."""
    return group_main("build", add_synthetic_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
