"""How a record's history reads: each version beside what changed from the one before (a word diff)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class VersionShown:
    version: object
    diff: list[tuple[str, str]]  # (kind: same | added | removed, text)


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.split(), after.split()
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("removed", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("added", " ".join(b[j1:j2])))
    return out


def version_diffs(versions_newest_first: list) -> list[VersionShown]:
    shown = []
    ordered = list(reversed(versions_newest_first))
    for n, version in enumerate(ordered):
        before = ordered[n - 1].content if n else ""
        shown.append(VersionShown(version, word_diff(before, version.content) if n else [("same", version.content)]))
    return list(reversed(shown))
