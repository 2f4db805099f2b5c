"""Security rules as data (rules.yaml), evaluated by code over each drifted resource.

For every rule, every pointer matching its `paths` in Git's manifest (target) or the cluster's
object (live), and every itemised change whose path matches, is a candidate; the rule fires
where the two sides differ and its condition holds. Named checks (RBAC widening, image
provenance) are the only conditions that need more than a comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.kit.datafile import load_yaml_model
from agents.kit.errors import KitConfigError
from agents.kit.knowledge import is_builtin
from agents.kit.pointers import MISSING, get, matches, walk
from protocol.models import Domain, DriftReport, Finding, FindingKind, ResourceDrift, Severity

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
Category = Literal["privilege", "rbac", "provenance", "exposure", "secret"]
CATEGORY_KIND: dict[str, FindingKind] = {
    "privilege": FindingKind.WIDENED, "rbac": FindingKind.WIDENED, "provenance": FindingKind.WIDENED,
    "exposure": FindingKind.WIDENED, "secret": FindingKind.SECRET_VALUE,
}
"""What a rule's category means for the decision (the drift agent decides on the kind, not the rule id)."""
SEVERITY_ORDER = [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


class RulesError(KitConfigError):
    """The rules file is missing or malformed; the message names the file and the rule."""


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    became: Any = MISSING
    left: Any = MISSING
    became_in: list[Any] | None = None
    added_items: bool = False
    removed_items: bool = False
    appeared: bool = False
    changed: bool = False
    check: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        set_ = [k for k in ("became", "left") if getattr(self, k) is not MISSING]
        set_ += [k for k in ("became_in", "check") if getattr(self, k) is not None]
        set_ += [k for k in ("added_items", "removed_items", "appeared", "changed") if getattr(self, k)]
        if len(set_) != 1:
            raise ValueError(f"a condition holds exactly one test, got {set_ or 'none'}")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    category: Category
    severity: Severity
    kinds: list[str] = Field(default_factory=lambda: ["*"])
    paths: list[str] = Field(min_length=1)
    when: list[Condition]
    message: str

    @model_validator(mode="before")
    @classmethod
    def _when_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("when"), dict):
            data = {**data, "when": [data["when"]]}
        return data


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actions: dict[Category, Literal["enforce", "escalate"]]
    action_min_severity: Severity = Severity.HIGH
    powerful_roles: list[str] = Field(default_factory=list)
    mutable_tags: list[str] = Field(default_factory=lambda: ["latest"])
    rules: list[Rule]


def load_rules(path: Path = DEFAULT_RULES) -> RuleSet:
    return load_yaml_model(path, RuleSet, what="security rules", error=RulesError)


# --- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str  # registry + path, without tag or digest
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        rest, _, digest = image.partition("@")
        name, tag = rest, None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = rest.rsplit(":", 1)
        first, _, path = name.partition("/")
        if path and ("." in first or ":" in first or first == "localhost"):
            registry = first
        else:
            registry, path = "docker.io", name if "/" in name else f"library/{name}"
        return cls(registry=registry, repository=f"{registry}/{path}", tag=tag, digest=digest or None)


def _images(doc: Any) -> Iterable[str]:
    for pointer, value in walk(doc):
        if isinstance(value, str) and pointer.endswith("/image") and "ontainers/" in pointer:
            yield value


@dataclass
class Facts:
    """What the whole report says that single values cannot: the images Git uses for this app."""

    git_registries: set[str] = field(default_factory=set)
    git_repositories: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, report: DriftReport) -> Facts:
        facts = cls()
        for drift in report.drifts:
            for image in _images(drift.target):
                ref = ImageRef.parse(image)
                facts.git_registries.add(ref.registry)
                facts.git_repositories.add(ref.repository)
        return facts


# --- conditions ---------------------------------------------------------------------------------


def _items(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _added(before: Any, after: Any) -> list[Any]:
    return [x for x in _items(after) if x not in _items(before)]


def _grants(rules: Any) -> set[tuple[str, str, str, tuple[str, ...]]]:
    out = set()
    for rule in _items(rules):
        if not isinstance(rule, dict):
            continue
        names = tuple(sorted(_items(rule.get("resourceNames"))))
        groups = _items(rule.get("apiGroups")) or [""]
        resources = list(_items(rule.get("resources"))) + [f"url:{u}" for u in _items(rule.get("nonResourceURLs"))]
        for g in groups:
            for r in resources:
                for v in _items(rule.get("verbs")):
                    out.add((str(g), str(r), str(v), names))
    return out


def _covered(grant: tuple[str, str, str, tuple[str, ...]], by: set[tuple[str, str, str, tuple[str, ...]]]) -> bool:
    g, r, v, names = grant
    return any(
        bg in ("*", g) and br in ("*", r) and bv in ("*", v) and (not bnames or (names and set(names) <= set(bnames)))
        for bg, br, bv, bnames in by
    )


@dataclass(frozen=True)
class Hit:
    detail: str
    severity: Severity | None = None  # overrides the rule's severity when set


Check = Callable[[Any, Any, RuleSet, Facts], Hit | None]


def _rbac_widened(before: Any, after: Any, rules: RuleSet, _: Facts) -> Hit | None:
    old = _grants(before)
    new = sorted(g for g in _grants(after) if not _covered(g, old))
    if not new:
        return None
    wild = any("*" in (g, r, v) for g, r, v, _ in new)
    sensitive = any(r in ("secrets", "*") or v in ("escalate", "bind", "impersonate", "*") for _, r, v, _ in new)
    shown = ", ".join(f"{v} {r}" + (f" (apiGroup {g!r})" if g else "") for g, r, v, _ in new[:6])
    more = f" (+{len(new) - 6} more)" if len(new) > 6 else ""
    tags = (" including wildcards" if wild else "") + (" reaching secrets/escalation" if sensitive else "")
    return Hit(f"new grants{tags}: {shown}{more}", Severity.CRITICAL if wild or sensitive else None)


def _powerful_role(before: Any, after: Any, rules: RuleSet, _: Facts) -> Hit | None:
    if after in rules.powerful_roles and before not in rules.powerful_roles:
        return Hit(f"roleRef.name is now {after!r} (Git: {before if before is not MISSING else 'absent'!r})")
    return None


def _foreign_image(before: Any, after: Any, _: RuleSet, facts: Facts) -> Hit | None:
    if not isinstance(after, str):
        return None
    ref = ImageRef.parse(after)
    if ref.registry not in facts.git_registries:
        known = ", ".join(sorted(facts.git_registries)) or "none"
        return Hit(f"registry {ref.registry!r} is never used by Git's manifests (Git uses: {known})")
    if ref.repository not in facts.git_repositories:
        return Hit(f"repository {ref.repository!r} is never used by Git's manifests", Severity.HIGH)
    return None


def _mutable_tag(before: Any, after: Any, rules: RuleSet, _: Facts) -> Hit | None:
    if not isinstance(after, str):
        return None
    ref = ImageRef.parse(after)
    if ref.digest is None and (ref.tag is None or ref.tag in rules.mutable_tags):
        return Hit(f"tag {ref.tag or '(none, i.e. latest)'!r} is mutable and no digest pins it")
    return None


CHECKS: dict[str, Check] = {
    "rbac_widened": _rbac_widened,
    "powerful_role": _powerful_role,
    "foreign_image": _foreign_image,
    "mutable_tag": _mutable_tag,
}


def _show(v: Any) -> str:
    return "absent" if v is MISSING else repr(v) if not isinstance(v, (dict, list)) else f"{type(v).__name__}"


def _holds(c: Condition, before: Any, after: Any, rules: RuleSet, facts: Facts) -> Hit | None:
    if c.check is not None:
        check = CHECKS.get(c.check)
        if check is None:
            raise RulesError(f"unknown check {c.check!r} (known: {', '.join(CHECKS)})")
        return check(before, after, rules, facts)
    if c.became is not MISSING:
        ok = after == c.became and before != c.became
    elif c.left is not MISSING:
        ok = before == c.left and after != c.left
    elif c.became_in is not None:
        ok = after in c.became_in and before not in c.became_in
    elif c.added_items:
        added = _added(before, after)
        return Hit(f"added {added[:5]!r}") if added else None
    elif c.removed_items:
        removed = _added(after, before)
        return Hit(f"removed {removed[:5]!r}") if removed else None
    elif c.appeared:
        ok = before is MISSING and after is not MISSING
    else:
        ok = True  # `changed`: the caller already requires a difference
    return Hit(f"Git: {_show(before)}, cluster: {_show(after)}") if ok else None


# --- evaluation ---------------------------------------------------------------------------------


def _pointers(drift: ResourceDrift) -> list[str]:
    """Every pointer of the Git and cluster documents, first-seen order (walked once per drift, not per rule)."""
    seen: dict[str, None] = {}
    for doc in (drift.target, drift.live):
        if doc is not None:
            for pointer, _ in walk(doc):
                seen[pointer] = None
    return list(seen)


def _candidates(rule: Rule, drift: ResourceDrift, all_pointers: list[str] | None = None
                ) -> dict[str, tuple[Any, Any]]:
    """pointer -> (Git value, cluster value) for every pointer the rule's paths select."""
    out: dict[str, tuple[Any, Any]] = {}
    everywhere = all_pointers if all_pointers is not None else _pointers(drift)
    pointers = [p for p in everywhere if any(matches(g, p) for g in rule.paths)]
    for pointer in pointers:
        before = get(drift.target, pointer) if drift.target is not None else MISSING
        after = get(drift.live, pointer) if drift.live is not None else MISSING
        out[pointer] = (before, after)
    # The report's itemised changes catch what the objects cannot show (redacted values, absent objects).
    for change in drift.changes:
        if change.path in out and not change.redacted:
            continue
        if any(matches(g, change.path) for g in rule.paths):
            before = MISSING if change.op == "add" else change.before
            after = MISSING if change.op == "remove" else change.after
            if change.redacted and before == after:
                before, after = ("<redacted: Git>", "<redacted: cluster>")
            out[change.path] = (before, after)
    return out


def evaluate(ruleset: RuleSet, report: DriftReport) -> list[tuple[Rule, Finding]]:
    facts = Facts.of(report)
    found: list[tuple[Rule, Finding]] = []
    for drift in report.drifts:
        all_pointers: list[str] | None = None
        for rule in ruleset.rules:
            if not any(fnmatchcase(drift.ref.kind, k) for k in rule.kinds):
                continue
            if rule.kinds != ["*"] and not is_builtin(drift.ref.group):
                continue  # named kinds are Kubernetes' own; a custom kind of that name means what its pack says
            if all_pointers is None:
                all_pointers = _pointers(drift)
            hits: dict[str, Hit] = {}
            for pointer, (before, after) in _candidates(rule, drift, all_pointers).items():
                if before == after:
                    continue
                for cond in rule.when:
                    hit = _holds(cond, before, after, ruleset, facts)
                    if hit is not None:
                        hits[pointer] = hit
                        break
            # Keep the most specific pointer when a parent and its child both differ.
            for pointer, hit in hits.items():
                if any(other.startswith(pointer + "/") for other in hits):
                    continue
                found.append((rule, Finding(
                    rule_id=rule.id, domain=Domain.SECURITY, kind=CATEGORY_KIND[rule.category],
                    severity=hit.severity or rule.severity, resource=drift.ref, path=pointer,
                    message=f"{drift.ref.kind}/{drift.ref.name} {pointer}: {rule.message} — {hit.detail}",
                )))
    return found


def severity_at_least(s: Severity, floor: Severity) -> bool:
    return SEVERITY_ORDER.index(s) >= SEVERITY_ORDER.index(floor)
