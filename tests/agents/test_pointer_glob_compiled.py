"""The compiled pointer globs (one regex per glob) answer exactly as the segment-by-segment definition."""

from __future__ import annotations

import itertools

from agents.kit import pointers
from agents.kit.pointers import matches, split

SEGMENTS = ["a", "spec", "x~1y", "x~0", "~2", "", "0", "12", "a/b", "se*", "s?c", "[ab]", "*", "**"]
POINTER_SEGMENTS = ["a", "spec", "x~1y", "x~0", "~2", "", "0", "12", "sec", "a~1b", "**", "*"]


def reference(glob: str, pointer: str) -> bool:
    """The documented semantics, recursively (what `matches` must equal)."""
    return pointers._match(split(glob), split(pointer))


def _paths(segments: list[str], max_len: int) -> list[str]:
    out = [""]
    for n in range(1, max_len + 1):
        out += ["/" + "/".join(p) for p in itertools.product(segments, repeat=n)]
    return out


GLOBS = [*_paths(SEGMENTS, 2), "/**/securityContext/privileged", "/aggregationRule/**", "/**/volumes/*/hostPath",
         "/**/x~1y/**", "/**"]
POINTERS = [*_paths(POINTER_SEGMENTS, 3), "/spec/template/spec/containers/0/securityContext/privileged",
            "/aggregationRule", "/spec/volumes/2/hostPath/path"]


def test_compiled_glob_equals_the_definition() -> None:
    wrong = [(g, p) for g in GLOBS for p in POINTERS if matches(g, p) != reference(g, p)]
    assert not wrong, f"{len(wrong)} disagreements, e.g. {wrong[:5]}"


def test_literal_and_wildcard_globs_compile_to_one_regex() -> None:
    assert not isinstance(pointers._compiled("/**/securityContext/privileged"), list)
    assert isinstance(pointers._compiled("/spec/se*"), list)  # an fnmatch segment keeps the recursive matcher
    assert matches("/**/securityContext/privileged", "/spec/template/spec/containers/0/securityContext/privileged")
    assert not matches("/**/securityContext/privileged", "/spec/securityContext/privilegedX")
