# SPDX-License-Identifier: MIT
"""``solo-div`` builds its parser from light modules: no torch, Lightning or method classes.

The parser's choices and defaults that live in heavy modules are copied into the CLI modules;
each copy is checked here against its source, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "lightning", "solo_diversity.methods")

# (the light copy the parser reads, the source it copies), as "module:attribute".
COPIES = [
    ("solo_diversity.index.cli:SOURCE_NAMES", "solo_diversity.index.build:SOURCES"),
    ("solo_diversity.builders.cli:A_OUT_SIZE", "solo_diversity.builders.source.build:A_OUT_SIZE"),
    (
        "solo_diversity.builders.cli:A_OUT_CLASSES",
        "solo_diversity.builders.source.build:A_OUT_CLASSES",
    ),
    (
        "solo_diversity.builders.synthetic.cli:WEIGHTS_HINT",
        "solo_diversity.builders.synthetic.generate:WEIGHTS_HINT",
    ),
    (
        "solo_diversity.distances.cli:DEFAULT_MAX_SAMPLES",
        "solo_diversity.distances.samples:DEFAULT_MAX_SAMPLES",
    ),
    ("solo_diversity.prepare.cli:DATASETS", "solo_diversity.prepare.dataset:DATASETS"),
    ("solo_diversity.prepare.cli:INDEX_CACHE", "solo_diversity.prepare.dataset:INDEX_CACHE"),
    ("solo_diversity.report.cli:DEFAULT_DPI", "solo_diversity.report.figures:DEFAULT_DPI"),
    ("solo_diversity.experiments.run_cli:LAUNCHERS", "solo_diversity.experiments.launch:LAUNCHERS"),
]


def imported_modules(code: str) -> set[str]:
    """The modules a fresh interpreter imports to run ``code`` (from ``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first is the header


def test_importing_the_cli_loads_nothing_heavy() -> None:
    modules = imported_modules("import solo_diversity.cli")
    assert "solo_diversity.cli" in modules  # the parse read real lines
    assert [m for m in HEAVY if m in modules] == []


def test_every_help_loads_nothing_heavy() -> None:
    """``--help`` of the root and of every (nested) sub-command, all in one interpreter."""
    code = textwrap.dedent(
        """
        import argparse, contextlib, io
        from solo_diversity.cli import build_parser

        def paths(parser, path):
            yield path
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        yield from paths(sub, [*path, name])

        root = build_parser()
        for path in list(paths(root, [])):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                root.parse_args([*path, "--help"])
        """
    )
    modules = imported_modules(code)
    assert "solo_diversity.experiments.run_cli" in modules
    assert [m for m in HEAVY if m in modules] == []


def _value(name: str) -> object:
    module, attribute = name.split(":")
    return getattr(importlib.import_module(module), attribute)


@pytest.mark.parametrize(("light", "source"), COPIES, ids=[c[0] for c in COPIES])
def test_light_copy_equals_its_source(light: str, source: str) -> None:
    expected = _value(source)
    if isinstance(expected, dict):  # a registry: the parser offers its sorted keys
        expected = tuple(sorted(expected))
    assert _value(light) == expected
