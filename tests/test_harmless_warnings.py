# SPDX-License-Identifier: MIT
"""The entry points hide each named harmless library warning, and only those."""

from __future__ import annotations

import warnings

import pytest
from lightning.fabric.utilities.warnings import PossibleUserWarning
from torch.utils._pytree import LeafSpec

from solo_diversity.entry import HARMLESS, exit_on_user_error

# Each named warning as its library words it (Lightning 2.x, torch 2.14).
EMITTED = {
    "empty_list_dataloader": (
        "Total length of `list` across ranks is zero. Please make sure this was your intention.",
        UserWarning,
    ),
    "modules_in_eval_mode": (
        "Found 3 module(s) in eval mode at the start of training. This may lead to unexpected "
        "behavior during training. If this is intentional, you can ignore this warning.",
        PossibleUserWarning,
    ),
}
# Near misses that must still show: the other zero-length message, another Lightning warning.
STILL_SHOWN = [
    (
        "Total length of `DataLoader` across ranks is zero, but local rank has zero length. Please "
        "be cautious of uneven batch length.",
        UserWarning,
    ),
    (
        "The 'train_dataloader' does not have many workers which may be a bottleneck.",
        PossibleUserWarning,
    ),
    ("an unrelated warning", UserWarning),
]


def _shown(emit) -> list[str]:
    """The warnings ``emit`` raises inside the entry points' context (filters as they set them)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with exit_on_user_error():
            emit()
    return [str(w.message) for w in seen]


def test_the_named_list_is_what_is_emitted_here():
    assert {h.name for h in HARMLESS} == {*EMITTED, "pytree_leafspec"}


def test_lightnings_pytree_deprecation_is_hidden():
    assert _shown(LeafSpec) == []  # torch's real deprecated constructor, as Lightning calls it
    with warnings.catch_warnings(record=True) as seen:  # without the filter it does warn
        warnings.simplefilter("always")
        LeafSpec()
    assert any("LeafSpec" in str(w.message) for w in seen)


@pytest.mark.parametrize("name", sorted(EMITTED))
def test_each_named_warning_is_hidden(name):
    message, category = EMITTED[name]
    assert _shown(lambda: warnings.warn(message, category, stacklevel=1)) == []


@pytest.mark.parametrize("message, category", STILL_SHOWN)
def test_other_warnings_still_show(message, category):
    assert _shown(lambda: warnings.warn(message, category, stacklevel=1)) == [message]
