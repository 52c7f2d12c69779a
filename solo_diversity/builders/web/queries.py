# SPDX-License-Identifier: MIT
"""Class names to search queries, disambiguated by a WordNet hypernym where a name is ambiguous.

A class list names each class once (``name`` or ``wnid<TAB>name``, optionally a third column
``hypernym``). ImageNet-style names carry synonyms (``"tench, Tinca tinca"``); the query uses the
first one. A name is ambiguous when two classes of the list share it (ImageNet has two ``crane``
and two ``maillot``) or when the user gives it a hypernym: its query is then ``"<name> <hypernym>"``
(``crane bird``, ``crane device``), which is what a person would type. Hypernyms come from the
third column or from a map file (``name<TAB>hypernym`` or ``wnid<TAB>hypernym`` lines), so the
builder needs no WordNet download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from solo_diversity.errors import UserError


@dataclass(frozen=True)
class WebClass:
    """One class of the crawl: its label, the name the index records, and its query."""

    label: int
    name: str
    wnid: str
    query: str


def _lines(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append([cell.strip() for cell in line.split("\t")])
    return rows


def read_hypernyms(path: str | Path) -> dict[str, str]:
    """A ``key<TAB>hypernym`` map; a key is a class name or a WNID."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--hypernyms {file}: no such file (key<TAB>hypernym lines)")
    mapping = {}
    for row in _lines(file):
        if len(row) != 2 or not row[1]:
            raise UserError(f"--hypernyms {file}: {row!r} is not key<TAB>hypernym")
        mapping[row[0]] = row[1]
    return mapping


def first_synonym(name: str) -> str:
    """``"tench, Tinca tinca"`` -> ``"tench"``: the everyday name an engine is asked for."""
    return name.split(",")[0].strip()


def make_classes(
    names: list[str], wnids: list[str], hypernyms: dict[str, str]
) -> tuple[WebClass, ...]:
    """Queries for the classes; a shared name without hypernyms is an error naming the classes.

    Args:
        names: class names in label order (unique after the WNID, if any, is taken into account).
        wnids: the WNID of each class, ``""`` where none.
        hypernyms: name or WNID -> hypernym; a WNID entry wins over a name entry.

    Returns:
        One :class:`WebClass` per class, label = position.
    """
    short = [first_synonym(n) for n in names]
    classes = []
    for label, (name, wnid, word) in enumerate(zip(names, wnids, short, strict=True)):
        hypernym = hypernyms.get(wnid, "") if wnid else ""
        hypernym = hypernym or hypernyms.get(name, "") or hypernyms.get(word, "")
        if short.count(word) > 1 and not hypernym:
            shared = [f"{w or n}" for n, w, s in zip(names, wnids, short, strict=True) if s == word]
            raise UserError(
                f"class name {word!r} is shared by {', '.join(shared)}; give each a hypernym "
                "(a third column in --classes, or --hypernyms FILE) to tell their queries apart"
            )
        query = f"{word} {first_synonym(hypernym)}" if hypernym else word
        classes.append(WebClass(label, name, wnid, query))
    queries = [c.query for c in classes]
    repeated = sorted({q for q in queries if queries.count(q) > 1})
    if repeated:
        raise UserError(f"classes would share the queries {', '.join(repeated[:5])}")
    return tuple(classes)


def read_class_list(
    path: str | Path, hypernyms: dict[str, str] | None = None
) -> tuple[WebClass, ...]:
    """The classes of a ``name`` / ``wnid<TAB>name[<TAB>hypernym]`` file, with their queries."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--classes {file}: no such file (name, or wnid<TAB>name[<TAB>hypernym])")
    names, wnids, given = [], [], dict(hypernyms or {})
    for row in _lines(file):
        if len(row) > 3:
            raise UserError(f"--classes {file}: {row!r} has more than 3 columns")
        wnid, name = (row[0], row[1]) if len(row) > 1 else ("", row[0])
        if len(row) == 3 and row[2]:
            given.setdefault(wnid or name, row[2])
        names.append(name)
        wnids.append(wnid)
    if not names:
        raise UserError(f"--classes {file} lists no classes")
    keys = [w or n for n, w in zip(names, wnids, strict=True)]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise UserError(f"--classes {file} repeats {', '.join(repeated[:5])}")
    return make_classes(names, wnids, given)
