# SPDX-License-Identifier: MIT
"""The paper's experiments as data: cell lists, what each cell runs, the ``experiment`` command."""
