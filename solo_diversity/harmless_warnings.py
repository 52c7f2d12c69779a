# SPDX-License-Identifier: MIT
"""The library warnings this project's entry points hide, each named, with why it is harmless.

A sweep's log repeats them for every task and buries the warnings that matter. Each filter matches
one message (from its start) and one category, so any other warning of the same library still
shows. :func:`hide_harmless_warnings` is called by :func:`solo_diversity.entry.exit_on_user_error`,
the context every entry point (``main_pretrain.py``, ``main_linear.py``, ``main_knn.py``,
``solo-div``) runs in.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class HarmlessWarning:
    """One warning to hide: its message (a regular expression matched at its start) and why."""

    name: str
    category: type[Warning]
    message: str
    why: str


HARMLESS = (
    HarmlessWarning(
        "pytree_leafspec",
        FutureWarning,
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        "Lightning's own _pytree helper builds a LeafSpec, which torch deprecates; nothing of "
        "ours does, and Lightning will change it.",
    ),
    HarmlessWarning(
        "empty_list_dataloader",
        UserWarning,
        r"Total length of `list` across ranks is zero\. Please make sure this was your intention",
        "a run without validation passes an empty list of val loaders on purpose (the form that "
        "says one rank alone has no data is another message and still shows).",
    ),
    HarmlessWarning(
        "modules_in_eval_mode",
        UserWarning,  # Lightning's PossibleUserWarning is a UserWarning
        r"Found \d+ module\(s\) in eval mode at the start of training",
        "the probe keeps its frozen backbone in eval mode by design (solo-learn's protocol).",
    ),
)


def hide_harmless_warnings() -> None:
    """Install one ``ignore`` filter per entry of :data:`HARMLESS` (idempotent)."""
    for known in HARMLESS:
        warnings.filterwarnings("ignore", message=known.message, category=known.category)
