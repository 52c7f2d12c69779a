# SPDX-License-Identifier: MIT
import lightning.pytorch as pl
import pytest
import torch

from solo_diversity.data import (
    MultiViewTransform,
    PretrainDataModule,
    eval_transform,
    parse_augmentations,
)
from solo_diversity.errors import UserError
from solo_diversity.run.callbacks import BadImageGuard
from tests.data.tiny_module import TinyModule

ZERO, ONE = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def _views():
    specs = parse_augmentations(
        [{"crop_size": 8, "num_crops": 2}, {"crop_size": 4, "num_crops": 2}]
    )
    return MultiViewTransform(specs, ZERO, ONE)


def _bad_subset(build_subset, images, noise_layout, n_good=10):
    layout = noise_layout(1, n_good)
    layout["class0"] |= images.bad_files()
    return build_subset(layout, seed=1)


def test_train_batches_in_solo_learn_format(build_subset, noise_layout):
    subset = build_subset(noise_layout(2, 11))  # N = 22
    dm = PretrainDataModule(subset, _views(), batch_size=4, num_workers=0, seed=0, accumulate=2)
    dm.setup("fit")
    assert (dm.rank, dm.world_size) == (0, 1)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(dm.sampler) == 16 and len(batches) == 4  # floor(22 / 8) * 8 images
    seen = []
    for indexes, crops, targets in batches:
        assert indexes.dtype == torch.long and tuple(indexes.shape) == (4,)
        assert targets.dtype == torch.long and tuple(targets.shape) == (4,)
        assert [tuple(c.shape) for c in crops] == [(4, 3, 8, 8)] * 2 + [(4, 3, 4, 4)] * 2
        assert all(c.dtype == torch.float32 for c in crops)
        labels = subset.index.labels(indexes.numpy())
        assert targets.tolist() == labels.tolist()
        seen += indexes.tolist()
    assert len(set(seen)) == 16 and set(seen) <= set(map(int, subset.positions))
    assert dm.loaded_images == 16 and dm.bad_images == 0


def test_subset_smaller_than_one_batch(build_subset, noise_layout):
    subset = build_subset(noise_layout(1, 3))
    with pytest.raises(UserError, match="subset of 3 images is smaller than one global batch of 4"):
        PretrainDataModule(subset, _views(), batch_size=4, num_workers=0, seed=0)


def test_val_dataloader(build_subset, noise_layout):
    subset = build_subset(noise_layout(2, 3))
    dm = PretrainDataModule(subset, _views(), batch_size=4, num_workers=0, seed=0)
    assert dm.val_dataloader() == []
    dm = PretrainDataModule(
        subset,
        _views(),
        batch_size=4,
        num_workers=0,
        seed=0,
        val_subset=subset,
        val_transform=eval_transform(8, ZERO, ONE),
    )
    x, y = next(iter(dm.val_dataloader()))
    assert tuple(x.shape) == (4, 3, 8, 8) and y.dtype == torch.long
    assert sum(len(b[1]) for b in dm.val_dataloader()) == 6


def test_val_subset_needs_transform(build_subset, noise_layout):
    subset = build_subset(noise_layout(1, 4))
    with pytest.raises(UserError, match="needs a val_transform"):
        PretrainDataModule(subset, _views(), batch_size=2, num_workers=0, seed=0, val_subset=subset)


def test_check_bad_images_threshold(build_subset, images, noise_layout):
    subset = _bad_subset(build_subset, images, noise_layout)  # 10 good + 3 bad
    dm = PretrainDataModule(subset, _views(), batch_size=13, num_workers=0, seed=0)
    dm.check_bad_images()  # nothing read yet
    list(dm.train_dataloader())
    bad, loaded = dm.bad_images, dm.loaded_images
    assert loaded == 13 and bad >= 3
    with pytest.raises(UserError) as err:
        dm.check_bad_images()
    pct = f"{bad / (bad + loaded):.2%}"
    assert str(err.value) == (
        f"{bad} of {bad + loaded} image reads failed ({pct}), more than max_bad_fraction=0.01; "
        "the log names each unreadable image"
    )
    dm.max_bad_fraction = 0.5
    dm.check_bad_images()


def test_workers_report_bad_images_to_parent(build_subset, images, noise_layout):
    subset = _bad_subset(build_subset, images, noise_layout)
    dm = PretrainDataModule(subset, _views(), batch_size=2, num_workers=2, seed=0)
    loader = dm.train_dataloader()
    assert loader.persistent_workers
    first = [b[0].tolist() for b in loader]
    assert sum(len(b) for b in first) == 12
    assert dm.loaded_images == 12 and dm.bad_images >= 1
    in_epoch_one = dm.bad_images
    dm.sampler.set_epoch(1)
    list(loader)
    assert dm.loaded_images == 24 and dm.bad_images >= in_epoch_one


def _trainer(callbacks=()):
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=list(callbacks),
    )


def test_lightning_fit_sets_epochs_and_guard_passes(build_subset, noise_layout):
    subset = build_subset(noise_layout(2, 5))
    dm = PretrainDataModule(subset, _views(), batch_size=4, num_workers=0, seed=0)
    model = TinyModule()
    trainer = _trainer([BadImageGuard(dm)])
    trainer.fit(model, datamodule=dm)
    assert model.epochs_seen == [0, 1]
    assert trainer.global_step == 4  # 2 epochs x floor(10 / 4) steps
    assert dm.loaded_images == 16
    assert model.val_batches == 0  # no val subset: val_dataloader() is [] and is skipped


def test_lightning_fit_with_validation(build_subset, noise_layout):
    subset = build_subset(noise_layout(2, 5))
    dm = PretrainDataModule(
        subset,
        _views(),
        batch_size=4,
        num_workers=0,
        seed=0,
        val_subset=subset,
        val_transform=eval_transform(8, ZERO, ONE),
    )
    model = TinyModule()
    trainer = _trainer()
    trainer.num_sanity_val_steps = 0
    trainer.fit(model, datamodule=dm)
    assert model.val_batches == 2 * 3  # 2 epochs x ceil(10 / 4) batches


def test_guard_stops_training(build_subset, images, noise_layout):
    subset = _bad_subset(build_subset, images, noise_layout)
    dm = PretrainDataModule(subset, _views(), batch_size=4, num_workers=0, seed=0)
    with pytest.raises(UserError, match="image reads failed"):
        _trainer([BadImageGuard(dm)]).fit(TinyModule(), datamodule=dm)


def _epoch_with(dataset, *, workers, context=None):
    from torch.utils.data import DataLoader

    from solo_diversity.data import EpochSampler, collate_views

    sampler = EpochSampler(len(dataset), batch_size=2, world_size=1, rank=0, seed=0)
    loader = DataLoader(
        dataset,
        batch_size=2,
        sampler=sampler,
        num_workers=workers,
        multiprocessing_context=context,
        collate_fn=collate_views,
    )
    return sum(len(b[0]) for b in loader)


def test_counter_needs_a_slot_per_worker(build_subset, noise_layout):
    from solo_diversity.data import PretrainDataset, ReadCounter

    dataset = PretrainDataset(build_subset(noise_layout(1, 4)), _views(), ReadCounter(slots=1))
    with pytest.raises(RuntimeError, match="create it with slots >= num_workers \\+ 1"):
        _epoch_with(dataset, workers=1)


@pytest.mark.slow
def test_spawned_workers_count_in_parent(build_subset, images, noise_layout):
    from solo_diversity.data import PretrainDataset, ReadCounter

    subset = _bad_subset(build_subset, images, noise_layout)
    dataset = PretrainDataset(subset, _views(), ReadCounter(slots=3))
    assert _epoch_with(dataset, workers=2, context="spawn") == 12
    assert dataset.counter.loaded == 12 and dataset.counter.bad >= 1
