# SPDX-License-Identifier: MIT
"""The training loader's saved position, per-sample augmentation seeds, and checkpoint files."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from solo_diversity.config.pretrain import resolve_pretrain_cfg
from solo_diversity.config.run_config import config_record, every_minutes, every_n_steps
from solo_diversity.data import (
    FastMultiView,
    MultiViewTransform,
    PretrainDataModule,
    PretrainDataset,
    parse_augmentations,
)
from solo_diversity.data.sampler import EpochSampler, LoaderPosition, StepBatches, sample_seeds
from solo_diversity.errors import UserError
from solo_diversity.run import checkpoint_files as files
from solo_diversity.run.callbacks import SoloCheckpointer, VisitLedger
from solo_diversity.run.resume import find_resumable
from solo_diversity.run.visits import count_dtype, entry_of, visit_summary
from tests.data.tiny_module import TinyModule

SPECS = [
    {
        "crop_size": 8,
        "num_crops": 2,
        "color_jitter": {
            "prob": 0.8,
            "brightness": 0.4,
            "contrast": 0.4,
            "saturation": 0.2,
            "hue": 0.1,
        },
        "grayscale": {"prob": 0.2},
        "gaussian_blur": {"prob": 0.5},
        "horizontal_flip": {"prob": 0.5},
    },
    {"crop_size": 4, "num_crops": 1},
]
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _module(subset, backend="fast", workers=0, **kw):
    view_cls = FastMultiView if backend == "fast" else MultiViewTransform
    return PretrainDataModule(
        subset,
        view_cls(parse_augmentations(SPECS), MEAN, STD),
        batch_size=4,
        num_workers=workers,
        seed=3,
        **kw,
    )


def _same_batches(a, b):
    assert len(a) == len(b)
    for (ia, va, ta), (ib, vb, tb) in zip(a, b, strict=True):
        assert torch.equal(ia, ib) and torch.equal(ta, tb)
        assert all(torch.equal(x, y) for x, y in zip(va, vb, strict=True))


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_loader_continues_with_the_next_batch(build_subset, noise_layout, workers):
    subset = build_subset(noise_layout(2, 9))  # N = 18: 4 batches of 4 per epoch
    dm = _module(subset)
    dm.sampler.set_epoch(1)
    whole = list(dm.train_dataloader())
    loader = dm.train_dataloader()
    taken = iter(loader)
    first = [next(taken) for _ in range(3)]
    state = loader.state_dict()
    assert state == {
        "position": {
            "epoch": 1,
            "batches": 3,
            "num_samples": 18,
            "batch_size": 4,
            "world_size": 1,
            "accumulate": 1,
            "passes": 1,
            "seed": 3,
            "pass": 0,
        }
    }
    fresh = _module(subset, workers=workers)  # a new process: epoch 0 until the state says so
    resumed = fresh.train_dataloader()
    resumed.load_state_dict(state)
    assert fresh.sampler.epoch == 1 and len(resumed) == 4  # Lightning counts the full epoch
    rest = list(resumed)
    _same_batches(first + rest, whole)
    assert resumed.state_dict()["position"]["batches"] == 4
    fresh.sampler.set_epoch(2)  # the next epoch starts from its first batch again
    assert len(list(resumed)) == 4


def test_position_counts_the_pass_and_leaves_out_a_batch_in_flight(build_subset, noise_layout):
    subset = build_subset(noise_layout(2, 9))
    dm = _module(subset, min_steps_per_epoch=7)  # 2 passes of 4 batches
    loader = dm.train_dataloader()
    taken = iter(loader)
    for _ in range(5):
        next(taken)
    assert loader.state_dict()["position"]["pass"] == 1
    loader.in_flight = lambda: 1  # a step still running when the checkpoint is written
    assert loader.state_dict()["position"]["batches"] == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"world_size": 2}, "the world size was 2 in the checkpoint and is 1 now"),
        ({"batch_size": 8}, "the batch size per device was 8 in the checkpoint and is 4 now"),
        ({"num_samples": 20}, "the subset size was 20 in the checkpoint and is 18 now"),
        ({"seed": 4}, "the seed was 4 in the checkpoint and is 3 now"),
    ],
)
def test_resume_with_another_shape_is_one_line(build_subset, noise_layout, change, message):
    dm = _module(build_subset(noise_layout(2, 9)))
    loader = dm.train_dataloader()
    state = loader.state_dict()
    state["position"].update(change)
    with pytest.raises(UserError) as err:
        loader.load_state_dict(state)
    assert str(err.value) == (
        f"cannot resume: {message}; resume with the same settings or start a new run"
    )


def test_position_from_another_version_is_one_line():
    with pytest.raises(UserError, match=r"^the checkpoint's loader position lacks epoch, "):
        LoaderPosition.from_dict({"batches": 3})


def test_batches_carry_the_sample_seeds_of_their_permutation_positions():
    sampler = EpochSampler(40, batch_size=4, world_size=2, rank=1, seed=7, passes=2)
    sampler.set_epoch(3)
    batches = list(StepBatches(sampler))
    keys = [key for batch in batches for key in batch]
    assert [k[0] for k in keys] == sampler.indices().tolist()
    # rank 1 holds positions 1, 3, 5, ... of each pass (pass index epoch * passes + p)
    expected = np.concatenate([sample_seeds(7, 3 * 2 + p, np.arange(1, 40, 2)) for p in range(2)])
    assert [k[1] for k in keys] == expected.tolist()
    assert len(set(expected.tolist())) == 40
    one_rank = EpochSampler(40, batch_size=4, world_size=1, rank=0, seed=7, passes=2)
    assert np.array_equal(one_rank.seeds(3)[1:40:2], expected[:20])  # whatever the world size


def test_sample_seeds_are_a_pure_function_of_seed_pass_and_position():
    a = sample_seeds(5, 2, np.arange(6))
    assert np.array_equal(a, sample_seeds(5, 2, np.arange(6)))
    assert a.dtype == np.int64 and (a >= 0).all()
    assert not np.intersect1d(a, sample_seeds(5, 3, np.arange(6))).size
    assert not np.intersect1d(a, sample_seeds(6, 2, np.arange(6))).size


@pytest.mark.parametrize("backend", ["fast", "torchvision"])
def test_views_depend_on_the_key_not_on_the_rng_state(build_subset, noise_layout, backend):
    dataset = _module(build_subset(noise_layout(1, 4)), backend).train_dataset
    torch.manual_seed(0)
    first = dataset[(1, 12345)]
    torch.manual_seed(99)  # another caller's stream
    again = dataset[(1, 12345)]
    assert first[0] == again[0]
    assert all(torch.equal(x, y) for x, y in zip(first[1], again[1], strict=True))
    other = dataset[(1, 12346)]
    assert not all(torch.equal(x, y) for x, y in zip(first[1], other[1], strict=True))


def test_seeded_read_leaves_the_callers_rng_where_it_was(build_subset, noise_layout):
    dataset = _module(build_subset(noise_layout(1, 4))).train_dataset
    assert isinstance(dataset, PretrainDataset)
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    dataset[(0, 7)]
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("backend", ["fast", "torchvision"])
def test_batches_are_the_same_with_any_number_of_workers(build_subset, noise_layout, backend):
    subset = build_subset(noise_layout(2, 9))
    single = _module(subset, backend, workers=0)
    pooled = _module(subset, backend, workers=2)
    for dm in (single, pooled):
        dm.sampler.set_epoch(2)
    _same_batches(list(single.train_dataloader()), list(pooled.train_dataloader()))


def test_publish_writes_the_checkpoint_and_its_checksum(tmp_path):
    path = tmp_path / "run-ep=0.ckpt"
    path.write_bytes(b"old")
    tmp = files.temporary_path(path)
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp)
    digest = files.publish(tmp, path)
    assert not tmp.exists() and files.file_sha256(path) == digest
    assert files.checksum_path(path).read_text() == f"{digest}  run-ep=0.ckpt\n"
    assert files.verify(path) is None


def test_verify_names_what_is_wrong(tmp_path):
    path = tmp_path / "a.ckpt"
    torch.save({"state_dict": {}}, path)
    assert files.verify(path) is None  # no checksum file: it loads, so it is usable
    path.write_bytes(path.read_bytes()[:40])
    assert files.verify(path).startswith("it does not load (")
    torch.save({"weights": 1}, path)
    assert files.verify(path) == "it is not a Lightning checkpoint (no state_dict)"
    files.checksum_path(path).write_text("0" * 64 + "  a.ckpt\n")
    assert files.verify(path) == (
        f"its sha256 {files.file_sha256(path)[:12]} differs from a.ckpt.sha256 (000000000000): "
        "the file is truncated or corrupt"
    )


def _run_dir(root, cfg, name, steps):
    run = root / "simclr" / name
    run.mkdir(parents=True)
    (run / "args.json").write_text(json.dumps(OmegaConf.to_container(cfg)))
    made = []
    for step in steps:
        path = run / f"x-{name}-ep=0-step={step}.ckpt"
        tmp = files.temporary_path(path)
        torch.save({"state_dict": {"step": torch.tensor(step)}}, tmp)
        files.publish(tmp, path)
        made.append(path)
    return made


def test_find_resumable_skips_a_truncated_newest_checkpoint(tmp_path, capsys):
    cfg = OmegaConf.create({"name": "x", "method": "simclr", "seed": 1})
    older, newest = _run_dir(tmp_path, cfg, "abc", [4, 8])
    newest.write_bytes(newest.read_bytes()[:100])
    assert find_resumable(tmp_path / "simclr", config_record(cfg)) == older
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"auto-resume: skipping {newest}: its sha256 ")
    assert find_resumable(tmp_path / "simclr", {"seed": 2}) is None


@pytest.mark.parametrize("value", [-1, 2.5, "often", True])
def test_every_n_steps_must_be_a_count(value):
    cfg = OmegaConf.create({"checkpoint": {"every_n_steps": value}})
    with pytest.raises(UserError) as err:
        every_n_steps(cfg)
    assert str(err.value) == (
        f"checkpoint.every_n_steps must be an integer >= 0 (0 = off), got {value!r}"
    )


def test_checkpointer_reads_every_n_steps_from_the_config(tmp_path):
    cfg = OmegaConf.create({"name": "x", "checkpoint": {"every_n_steps": 5}})
    saver = SoloCheckpointer(
        config_record(cfg), tmp_path, "v", frequency_steps=7, every_n_steps=every_n_steps(cfg)
    )
    assert [s for s in range(1, 22) if saver._due(s)] == [5, 7, 10, 14, 15, 20, 21]
    unset = OmegaConf.create({"name": "x"})
    assert every_n_steps(unset) == 0
    assert SoloCheckpointer(config_record(unset), tmp_path, "v", 0).every_n_steps == 0


@pytest.mark.parametrize("value", [-1, float("inf"), "often", True])
def test_every_minutes_must_be_a_duration(value):
    cfg = OmegaConf.create({"checkpoint": {"every_minutes": value}})
    with pytest.raises(UserError) as err:
        every_minutes(cfg)
    assert str(err.value) == (
        f"checkpoint.every_minutes must be a number >= 0 (0 = off), got {value!r}"
    )


def test_runs_save_every_30_minutes_by_default(compose_cfg):
    assert every_minutes(resolve_pretrain_cfg(compose_cfg())) == 30
    solo_learn_yaml = compose_cfg()  # solo-learn's YAMLs have no such key
    OmegaConf.set_struct(solo_learn_yaml, False)
    del solo_learn_yaml.checkpoint["every_minutes"]
    assert every_minutes(resolve_pretrain_cfg(solo_learn_yaml)) == 30


# Step 10, the last, is saved once: as the final checkpoint, not as a step checkpoint too.
@pytest.mark.parametrize(("minutes", "saved"), [(30, []), (1e-9, list(range(1, 10)))])
def test_a_timed_save_lands_on_the_first_step_boundary_past_its_interval(
    build_subset, noise_layout, tmp_path, minutes, saved
):
    dm = _module(build_subset(noise_layout(2, 13)))
    _fit(dm, tmp_path, [], every=0, minutes=minutes, keep_prev=True)  # 10 steps of a few ms
    names = (tmp_path / "tm" / "v1").glob("*-step=*.ckpt")
    assert sorted(int(p.stem.rsplit("=", 1)[1]) for p in names) == saved


def test_visit_counts_map_positions_to_entries():
    positions = np.array([40, 10, 30, 20])
    entries, outside = entry_of(positions, np.array([10, 10, 20, 99, 40]))
    assert entries.tolist() == [1, 1, 3, 0] and outside == 1
    counts = np.array([2, 2, 3, 0])
    assert visit_summary(counts, 0) == {
        "min": 0,
        "max": 3,
        "images_seen": 7,
        "unseen": 1,
        "outside": 0,
        "histogram": {"0": 1, "2": 2, "3": 1},
    }
    assert [count_dtype(v) for v in (255, 256, 70000)] == [np.uint8, np.uint16, np.uint32]


class _Record(pl.Callback):
    """Index positions of every batch trained on; raises KeyboardInterrupt after step ``stop``."""

    def __init__(self, stop: int = -1) -> None:
        self.stop, self.indexes = stop, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.indexes.append(batch[0].tolist())
        if trainer.global_step == self.stop:
            raise KeyboardInterrupt


def _fit(dm, tmp_path, callbacks, ckpt_path=None, every=3, minutes=0, keep_prev=False):
    saving = {"every_n_steps": every, "every_minutes": minutes}
    cfg = OmegaConf.create({"name": "tiny", "checkpoint": saving})
    saver = SoloCheckpointer(
        config_record(cfg),
        tmp_path / "tm",
        "v1",
        frequency_steps=0,
        keep_prev=keep_prev,
        every_n_steps=every_n_steps(cfg),
        every_minutes=every_minutes(cfg),
    )
    torch.manual_seed(0)
    model = TinyModule()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=10,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[saver, VisitLedger(), *callbacks],
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model, saver, trainer


@pytest.mark.parametrize("stop", [4, 6])  # between two checkpoints; on an epoch's last batch
def test_lightning_resume_trains_on_the_same_batches(build_subset, noise_layout, tmp_path, stop):
    subset = build_subset(noise_layout(2, 13))  # N = 26: 6 batches of 4 per epoch
    whole = _Record()
    reference, _, _ = _fit(_module(subset), tmp_path / "a", [whole])
    first = _Record(stop)
    with pytest.raises(SystemExit):
        _fit(_module(subset), tmp_path / "b", [first])
    (saved,) = (tmp_path / "b" / "tm" / "v1").glob("*.ckpt")  # step 3 replaced by the Ctrl-C save
    assert saved.name == f"tiny-v1-ep={(stop - 1) // 6}-step={stop}.ckpt"
    rest = _Record()
    resumed, _, trainer = _fit(_module(subset), tmp_path / "b", [rest], ckpt_path=saved)
    assert first.indexes + rest.indexes == whole.indexes and len(whole.indexes) == 10
    assert all(
        torch.equal(a, b)
        for a, b in zip(resumed.state_dict().values(), reference.state_dict().values(), strict=True)
    )
    counts, outside = trainer.callbacks[1].counts()
    assert counts.sum() == 40 and outside == 0 and counts.max() == 2  # 10 steps of 4 over 26


def test_a_failed_write_is_one_line_and_keeps_the_previous_checkpoint(
    build_subset, noise_layout, tmp_path
):
    dm = _module(build_subset(noise_layout(2, 13)))
    run_dir = tmp_path / "tm" / "v1"
    run_dir.mkdir(parents=True)
    (run_dir / "tiny-v1-ep=0-step=6.ckpt.tmp").mkdir()  # the temporary file cannot be written
    with pytest.raises(UserError) as err:
        _fit(dm, tmp_path, [])
    previous = run_dir / "tiny-v1-ep=0-step=3.ckpt"
    assert str(err.value) == (
        f"could not write checkpoint {run_dir / 'tiny-v1-ep=0-step=6.ckpt'} (Is a directory); "
        f"{previous} is intact"
    )
    assert files.verify(previous) is None
