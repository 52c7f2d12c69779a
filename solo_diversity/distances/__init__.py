# SPDX-License-Identifier: MIT
"""Distribution distances between index datasets: FID (clean-fid) and VisualDNA (vdna), Table 3.

Modules: ``samples`` (which images: subset, cap, seed), ``extractors`` (registry, local weights,
offline errors), ``features`` (index -> clean-resized batches -> cached pooled features), ``fid``,
``vdna``, ``table`` (every pretraining x downstream pair -> JSON + Markdown), ``cli``
(``solo-div distance fid|vdna|table``). clean-fid and vdna are imported lazily (extras ``fid``
and ``vdna``).
"""
