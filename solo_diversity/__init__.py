# SPDX-License-Identifier: MIT
"""solo-diversity: compute-budget-normalized SSL pretraining to study pretraining data diversity."""

__version__ = "0.1.0"
