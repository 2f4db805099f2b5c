"""JSON Pointer helpers (RFC 6901) for specialists: walk a document, match pointer globs, read values.

Pointer globs work per segment: `*` is exactly one segment (any key or index), `**` any number of
segments (zero included); any other segment is an `fnmatch` pattern for that one segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

MISSING: Any = object()
"""A value that is not there (distinct from JSON null)."""

_SKIP = ("/metadata/managedFields", "/status")


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


def split(pointer: str) -> list[str]:
    return [unescape(s) for s in pointer.split("/")[1:]] if pointer else []


def walk(doc: Any, prefix: str = "", skip: tuple[str, ...] = _SKIP) -> Iterator[tuple[str, Any]]:
    """Every (pointer, value) of `doc`, containers included; bookkeeping subtrees in `skip` left out."""
    if prefix in skip:
        return
    yield prefix, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from walk(value, f"{prefix}/{escape(str(key))}", skip)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from walk(value, f"{prefix}/{i}", skip)


def get(doc: Any, pointer: str) -> Any:
    """The value at `pointer`, or MISSING."""
    cur = doc
    for seg in split(pointer):
        if isinstance(cur, dict):
            if seg not in cur:
                return MISSING
            cur = cur[seg]
        elif isinstance(cur, list):
            if not seg.isdigit() or int(seg) >= len(cur):
                return MISSING
            cur = cur[int(seg)]
        else:
            return MISSING
    return cur


def _match(pattern: list[str], segs: list[str]) -> bool:
    if not pattern:
        return not segs
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, segs[i:]) for i in range(len(segs) + 1))
    if not segs:
        return False
    return (head == "*" or fnmatchcase(segs[0], head)) and _match(rest, segs[1:])


_GLOB_CHARS = frozenset("*?[")


@lru_cache(maxsize=1024)
def _compiled(glob: str) -> re.Pattern[str] | list[str]:
    """A glob as one regular expression over the (canonically escaped) pointer, when it can be one.

    Globs are checked against every pointer of every document a specialist reads; one regex match
    is far cheaper than the segment-by-segment recursion. Only `*`, `**` and literal segments
    translate exactly; a segment with its own fnmatch pattern keeps the recursive matcher (the
    segment list is returned instead).
    """
    segs = split(glob)
    parts = []
    for seg in segs:
        if seg == "**":
            parts.append("(?:/[^/]*)*")
        elif seg == "*":
            parts.append("/[^/]*")
        elif _GLOB_CHARS.isdisjoint(seg):
            parts.append("/" + re.escape(escape(seg)))
        else:
            return segs
    return re.compile("".join(parts), re.DOTALL)


def _canonical(pointer: str) -> str:
    # `~` escapes may be written non-canonically (`~2` stays `~2` when unescaped): re-escape them the
    # one way the compiled globs expect. Most pointers hold no `~` at all.
    if "~" not in pointer:
        return pointer
    return "".join("/" + escape(seg) for seg in split(pointer))


def matches(glob: str, pointer: str) -> bool:
    """Whether `pointer` matches the per-segment `glob`."""
    compiled = _compiled(glob)
    if isinstance(compiled, list):
        return _match(compiled, split(pointer))
    return compiled.fullmatch(_canonical(pointer)) is not None


def matching(glob: str, *docs: Any) -> list[str]:
    """The concrete pointers matching `glob` in any of `docs`, in first-seen order."""
    seen: dict[str, None] = {}
    for doc in docs:
        if doc is None:
            continue
        for pointer, _ in walk(doc):
            if pointer not in seen and matches(glob, pointer):
                seen[pointer] = None
    return list(seen)
