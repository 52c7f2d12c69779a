# SPDX-License-Identifier: MIT
"""solo-diversity: compute-budget-normalized SSL pretraining for studying pretraining data diversity."""

__version__ = "0.1.0"
