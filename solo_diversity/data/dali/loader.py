# SPDX-License-Identifier: MIT
"""``data.format=dali``: the DALI pretraining data module and the DALI probe batches.

This module owns turning DALI pipelines into what Lightning and the probe consume. Training
batches keep solo-learn's layout ``[indexes (B,), [crop_0 (B, 3, H, W), ...], targets (B,)]`` with
real index positions; the order is this rank's :class:`~solo_diversity.data.EpochSampler` epoch, so
sharding, per-epoch reshuffling, whole optimizer steps and therefore the budget ledger are exactly
those of the torchvision path. Lightning's ``set_epoch`` on ``.sampler`` selects the epoch; a
pipeline is rebuilt only when the epochs it would produce no longer follow on (a resume, or an
epoch abandoned at ``max_steps``). Unreadable images are skipped by the feed and counted here.
The train loader saves its position like the torchvision path's (:class:`~.sampler.Cursor`), so a
resumed run continues with the next batch of the same permutation, and since every random decision
of a view is drawn by the feed from the sample's (seed, pass, position) key, the resumed batches
hold the same crops as the uninterrupted run's, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from solo_diversity.data.augment import AugmentationSpec, ordered_specs
from solo_diversity.data.child_signals import stop_signals_held
from solo_diversity.data.dali.feed import IndexFeed, PaddedSequence, ScreenCache
from solo_diversity.data.dali.pipeline import (
    FEED_OUTPUTS,
    DaliRuntime,
    build_pretrain_pipeline,
    build_probe_pipeline,
    check_device,
    dali_module,
    view_specs,
)
from solo_diversity.data.datamodule import PretrainDataModule, batches_in_flight
from solo_diversity.data.sampler import Cursor


def pipeline_seed(*parts: int) -> int:
    """A 31-bit DALI seed from (seed, rank, epoch, ...): for graphs with DALI random operators."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] >> 1)


class DaliEpochs:
    """Epochs of DALI outputs as dicts of tensors, one pipeline for as long as epochs follow on.

    Args:
        output_map: the pipeline's output names.

    It holds no reference to its owner (``build`` comes with each call), so a dropped data module
    frees its pipeline, its threads and its feed processes at once instead of at some later
    garbage collection; a process forked meanwhile could inherit a thread's held lock.

    """

    def __init__(self, output_map: Sequence[str]) -> None:
        self.output_map = list(output_map)
        self._iterator: Any = None
        self._next_epoch: int | None = None
        self._end_pending = False  # last batch taken, DALI's end-of-epoch signal not yet
        self.builds = 0

    def run(
        self, epoch: int, build: Callable[[int, int], Any], num_batches: int, start: int = 0
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Batches ``start`` to ``num_batches`` of sampler epoch ``epoch``; ``build(first_epoch,
        start)`` makes a pipeline when the previous epoch was not read to its end (or when the
        epoch starts part-way, at a resume).
        """
        if self._iterator is None or epoch != self._next_epoch or start:
            dali_module()  # a one-line install hint when DALI is missing
            from nvidia.dali.plugin.pytorch import DALIGenericIterator

            self.close()
            with stop_signals_held():  # building starts the feed processes
                pipeline = build(epoch, start)
            self._iterator = DALIGenericIterator(
                pipeline, self.output_map, auto_reset=True, prepare_first_batch=False
            )
            self.builds += 1
        elif self._end_pending:
            # Lightning stops after len() batches, before the StopIteration that resets DALI.
            # (next(), never iter(): DALI's __iter__ may reset and so skip that signal.)
            if self._next_batch() is not None:
                raise RuntimeError("the DALI pipeline gave more batches than its epoch holds")
        self._next_epoch, self._end_pending = None, False  # a half-read epoch cannot go on
        count = start
        while (outputs := self._next_batch()) is not None:
            count += 1
            if count == num_batches:
                self._next_epoch, self._end_pending = epoch + 1, True
            yield outputs
        self._end_pending = False  # read to the end: DALI has already reset

    def _next_batch(self) -> dict[str, torch.Tensor] | None:
        try:
            return next(self._iterator)[0]
        except StopIteration:  # end of DALI's epoch (auto_reset starts the next one)
            return None

    def close(self) -> None:
        """Stop the pipeline and its feed workers."""
        self._iterator, self._next_epoch, self._end_pending = None, None, False


class DaliPretrainDataModule(PretrainDataModule):
    """:class:`PretrainDataModule` whose training batches come from a DALI pipeline.

    Args:
        subset: the pretraining subset.
        specs: the resolved augmentations.
        mean: default per-channel means.
        std: default per-channel standard deviations.
        device: ``"cpu"`` (``device_id=None``) or ``"gpu"`` (nvJPEG decode on the local rank).
        num_threads: DALI operator threads per rank.
        screen_cache: the :class:`ScreenCache` file; a temp-dir file named after the index
            fingerprint when None.
        **kwargs: the :class:`PretrainDataModule` arguments (batch_size, num_workers = feed
            processes, seed, accumulate, max_bad_fraction, val_subset, val_transform, ...).

    """

    def __init__(
        self,
        subset: Any,
        specs: Sequence[AugmentationSpec],
        mean: Sequence[float],
        std: Sequence[float],
        *,
        device: str = "cpu",
        num_threads: int = 2,
        screen_cache: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.specs, self.mean, self.std = ordered_specs(specs), list(mean), list(std)
        self.device, self.num_threads = check_device(device), int(num_threads)
        self.screen_path = (
            Path(screen_cache) if screen_cache else ScreenCache.default_path(subset.index, None)
        )
        self.gpu_index = 0  # the CUDA device of this rank (the trainer's root device)
        self.dali_loaded = self.dali_bad = 0
        super().__init__(subset, transform=None, **kwargs)
        self.num_views = sum(s.num_crops for s in self.specs)
        self.cursor = Cursor()
        self._epochs = DaliEpochs(
            [f"view_{k}" for k in range(self.num_views)] + list(FEED_OUTPUTS[1:])
        )

    def setup(self, stage: str | None = None) -> None:
        """Rank and world size from the trainer, and its GPU (``devices=[2, 3]`` -> cuda:2, 3)."""
        super().setup(stage)
        if self.trainer is not None:
            root = self.trainer.strategy.root_device
            self.gpu_index = int(root.index or 0) if root.type == "cuda" else 0

    def _build(self, first_epoch: int, start: int = 0) -> Any:
        cache = ScreenCache(self.screen_path, len(self.subset.index))
        feed = IndexFeed(
            self.subset,
            self.sampler,
            cache,
            first_epoch=first_epoch,
            skip=start * self.batch_size,
            views=view_specs(self.specs),
        )
        # The graph has no random operators (the feed draws every view's decisions): the seed
        # is only DALI's formality.
        return build_pretrain_pipeline(
            feed,
            self.specs,
            self.mean,
            self.std,
            DaliRuntime(
                self.batch_size,
                self.num_threads,
                self.num_workers,
                self.device,
                self.gpu_index,
                pipeline_seed(self.seed, self.rank),
            ),
        )

    def _loader_kwargs(self) -> dict[str, Any]:
        # The torchvision val loader's workers start while DALI's threads run: fork could copy a
        # held lock into them, so they are spawned.
        kwargs = super()._loader_kwargs()
        if self.num_workers > 0:
            kwargs["multiprocessing_context"] = "spawn"
        return kwargs

    @property
    def bad_images(self) -> int:
        """Unreadable images skipped by the DALI feed (plus val reads)."""
        return self.dali_bad + self.counter.bad

    @property
    def loaded_images(self) -> int:
        """Images delivered by the DALI feed (plus val reads)."""
        return self.dali_loaded + self.counter.loaded

    @property
    def num_batches(self) -> int:
        """Batches per loader epoch on this rank: ``len(sampler) // B``."""
        return len(self.sampler) // self.batch_size

    def train_batches(self) -> Iterator[list[Any]]:
        """Batches of this rank for the sampler's current epoch, in solo-learn's layout (from
        the restored position when a checkpoint was loaded).
        """
        epoch = self._epoch_now()  # not Lightning's set_epoch value: see ResumableLoader
        if epoch is not None:
            self.sampler.set_epoch(epoch)
        epoch = self.sampler.epoch
        start = self.cursor.begin(epoch)
        for out in self._epochs.run(epoch, self._build, self.num_batches, start):
            self.dali_loaded += int(out["position"].numel())
            self.dali_bad += int(out["skipped"].sum())
            views = [out[f"view_{k}"] for k in range(self.num_views)]
            self.cursor.advance()
            yield [out["position"].view(-1).long(), views, out["label"].view(-1).long()]

    def train_dataloader(self) -> Any:
        """An iterable of ``len(sampler) // B`` batches; Lightning sets its ``sampler``'s epoch."""
        return _TrainBatches(self)

    def teardown(self, stage: str) -> None:
        """Release the pipeline and its worker processes."""
        self._epochs.close()


class _TrainBatches:
    """What Lightning sees as the train loader: ``len``, ``iter`` and a ``sampler`` to set_epoch."""

    def __init__(self, datamodule: DaliPretrainDataModule) -> None:
        self.datamodule = datamodule

    @property
    def sampler(self) -> Any:
        """The data module's current sampler (``setup`` rebuilds it for the trainer's ranks)."""
        return self.datamodule.sampler

    def __len__(self) -> int:
        return self.datamodule.num_batches

    def __iter__(self) -> Iterator[list[Any]]:
        return self.datamodule.train_batches()

    def state_dict(self) -> dict[str, Any]:
        """The position Lightning stores in checkpoints (see :class:`~.sampler.Cursor`)."""
        dm = self.datamodule
        in_flight = 0 if dm.trainer is None else batches_in_flight(dm.trainer)
        return dm.cursor.state_dict(dm.sampler, in_flight)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue at the saved position; UserError when the sampler's shape has changed."""
        dm = self.datamodule
        dm.cursor.restore(dm.sampler, state_dict, dm.num_batches)


def probe_batches(
    subset: Any,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    train: bool,
    crop_fraction: float,
    batch_size: int = 256,
    num_workers: int = 1,
    num_threads: int = 2,
    device: str = "cpu",
    device_id: int = 0,
    seed: int = 0,
    screen_cache: str | Path | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every entry of ``subset`` once, in subset order, as ``(X (b, 3, size, size), Y (b,))``.

    ``train`` selects the probe's training view (RRC + flip) instead of the evaluation view
    (resize + centre crop); see :func:`~solo_diversity.data.dali.pipeline.build_probe_pipeline`.
    Unreadable entries are replaced by the next readable one, as in ``ClassificationDataset``.
    """
    cache = ScreenCache(
        screen_cache or ScreenCache.default_path(subset.index, None), len(subset.index)
    )
    batch = max(1, min(batch_size, len(subset)))
    feed = IndexFeed(subset, PaddedSequence(len(subset), batch), cache)
    run = DaliRuntime(batch, num_threads, num_workers, check_device(device), device_id, seed)
    epochs = DaliEpochs(["image", *FEED_OUTPUTS[1:]])
    build = partial(
        build_probe_pipeline,
        feed,
        size,
        mean,
        std,
        train=train,
        crop_fraction=crop_fraction,
        run=run,
    )
    for out in epochs.run(0, lambda *_: build(), -(-len(subset) // batch)):
        keep = out["position"].view(-1) >= 0
        yield out["image"][keep.to(out["image"].device)], out["label"].view(-1)[keep].long()
    epochs.close()
