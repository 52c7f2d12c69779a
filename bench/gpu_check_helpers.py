# SPDX-License-Identifier: MIT
"""The steps of ``scripts/gpu_check.sh`` that no user command covers: its data, its kill-and-resume
driver and random Stable-Diffusion-2.1-shaped weights.

Each is a sub-command of ``python -m bench.gpu_check`` so that the check's
stages stay command lines that can be printed (``--dry-run``) and rerun by hand. The data are the
photo corpus of :mod:`~bench.corpus` (JPEGs, read by DALI) and its CIFAR-size
array with a byte index; the resume driver runs ``main_pretrain.py`` as a user would, kills it
with SIGKILL once a step checkpoint exists, resumes it with ``auto_resume`` and compares it with
an uninterrupted twin.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from solo_diversity.errors import UserError

REPO = Path(__file__).resolve().parents[1]
#: Sizes of the check's own data: enough for 40 steps of 256 without a tiny epoch.
PHOTOS, SMALL = 1024, 4096
#: The class file of the synthetic stage: one class, its 8 images make one batch.
CLASSES = "n01440764\ttench\n"


def make_data(root: Path) -> dict[str, str]:
    """Write (or reuse) the check's photos, their path index source and the 32 px corpus.

    Args:
        root: the data folder (``OUT/data``).

    Returns:
        The paths the stages use: ``photos`` (JPEG class folders), ``small_index`` (32 px byte
        index) and ``classes`` (the synthetic builder's class file).
    """
    from bench.corpus import build_jpeg_corpus, build_small_corpus

    photos = build_jpeg_corpus(root / "photos", PHOTOS)
    small_index, _ = build_small_corpus(root / "small", SMALL)
    classes = root / "classes.txt"
    classes.write_text(CLASSES)
    return {"photos": str(photos), "small_index": str(small_index), "classes": str(classes)}


def _final_run(checkpoint_dir: Path) -> tuple[dict[str, Any], np.ndarray]:
    """(state_dict, visit counts) of the finished run under ``checkpoint_dir``."""
    import torch

    ledgers = sorted(checkpoint_dir.glob("*/*/ledger.json"))
    if len(ledgers) != 1:
        raise UserError(f"expected one finished run under {checkpoint_dir}, found {len(ledgers)}")
    folder = ledgers[0].parent
    (ckpt,) = [p for p in folder.glob("*.ckpt") if "-step=" not in p.name]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    with np.load(folder / "visits.npz") as visits:
        counts = visits["counts"].astype(np.int64)
    return state, counts


def max_abs_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest |a - b| over every tensor of two state dicts with the same keys."""
    if a.keys() != b.keys():
        raise UserError("the resumed and the uninterrupted run have different state-dict keys")
    return max(
        (float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel()),
        default=0.0,
    )


def _kill_after_checkpoint(cmd: list[str], checkpoint_dir: Path, limit_s: float) -> str | None:
    """Start ``cmd``; SIGKILL it once a step checkpoint exists (its loader workers follow it).

    The child stays in this process's group, so a stage stopped at its time limit stops it too.

    Returns:
        The checkpoint's name, or None when the run ended before one appeared.
    """
    proc = subprocess.Popen(cmd, cwd=REPO)
    deadline = time.monotonic() + limit_s
    while proc.poll() is None and time.monotonic() < deadline:
        saved = sorted(checkpoint_dir.glob("*/*/*-step=*.ckpt"))
        if saved:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return saved[0].name
        time.sleep(0.2)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return None


def resume_check(out: Path, overrides: list[str], limit_s: float = 300.0) -> dict[str, Any]:
    """Kill a run with SIGKILL after its first step checkpoint, resume it, compare with a twin.

    Args:
        out: the stage's folder; ``killed/`` and ``twin/`` hold the two runs' checkpoints and
            ``resume.json`` the result.
        overrides: hydra overrides of ``simclr_div`` (without ``checkpoint.dir``); they must set
            ``auto_resume.enabled=true`` and ``checkpoint.every_n_steps``.
        limit_s: how long the first run may take to write its first step checkpoint.

    Returns:
        ``{"killed_after": name, "max_abs_dw": float, "visits_equal": bool, ...}``.
    """
    cmd = [sys.executable, "main_pretrain.py", "--config-name", "simclr_div", *overrides]
    killed, twin = out / "killed", out / "twin"
    at = _kill_after_checkpoint([*cmd, f"checkpoint.dir={killed}"], killed, limit_s)
    resumed = subprocess.run(
        [*cmd, f"checkpoint.dir={killed}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sys.stdout.write(resumed.stdout)
    if resumed.returncode:
        raise UserError(f"the resumed run exited {resumed.returncode}; see its output above")
    subprocess.run([*cmd, f"checkpoint.dir={twin}"], cwd=REPO, check=True)
    (a, visits_a), (b, visits_b) = _final_run(killed), _final_run(twin)
    # "Resuming from <ckpt>", or auto-resume's line saying why it started anew.
    said = [line for line in resumed.stdout.splitlines() if "resum" in line.lower()]
    result = {
        "killed_after": at,
        "resume_line": said[0] if said else None,
        "max_abs_dw": max_abs_diff(a, b),
        "visits_equal": bool(np.array_equal(visits_a, visits_b)),
        "visits_total": int(visits_a.sum()),
    }
    (out / "resume.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _char_tokenizer(folder: Path) -> Any:
    """A CLIP tokenizer over letters and digits (no merges): no vocabulary download needed."""
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz0123456789-'.,"
    tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(c + "</w>" for c in letters)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    )


def sd21_modules(device: str) -> tuple[Any, Any, Any]:
    """(UNet, VAE, text encoder) with Stable Diffusion 2.1's shapes (768-v), random, fp32.

    About 866 M + 84 M + 340 M parameters, as the real model, so memory and time per image are
    its own; only the pixels are noise.

    Args:
        device: where to initialise them (``"cuda"`` takes seconds, ``"meta"`` allocates nothing).
    """
    import torch
    from diffusers import AutoencoderKL
    from diffusers import UNet2DConditionModel as UNet
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet(
            sample_size=96,
            block_out_channels=(320, 640, 1280, 1280),
            cross_attention_dim=1024,
            attention_head_dim=(5, 10, 20, 20),
            use_linear_projection=True,
        )
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            sample_size=768,
        )
        text = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=23,
                num_attention_heads=16,
                max_position_embeddings=77,
                hidden_act="gelu",
                projection_dim=512,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
    return unet, vae, text


def save_sd21_shaped(folder: Path) -> Path:
    """Save :func:`sd21_modules` in fp16 as a diffusers folder the synthetic builder loads.

    The modules are initialised on the GPU when one is visible (seconds instead of a minute). The
    scheduler is SD 2.1's (v-prediction); the tokenizer splits words into letters, so no
    vocabulary is downloaded.
    """
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    unet, vae, text = sd21_modules("cuda" if torch.cuda.is_available() else "cpu")
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae.half(),
        text_encoder=text.half(),
        tokenizer=_char_tokenizer(folder.parent / f"{folder.name}-tokenizer"),
        unet=unet.half(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)  # type: ignore[attr-defined]  # diffusers mixes it in
    return folder
