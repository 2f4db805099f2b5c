"""Knowledge packs: what the fields of custom resources mean, as data (agents/kit/packs/*.yaml), and one reader.

Kubernetes' own API groups are judged by code (the security rules, the drift agent's checks); a kind
of any other group means only what a pack says. Per API group and kind, a pack names:

- `security`: paths that are security controls and which direction weakens them
  (`order`: values from strongest to weakest; `items: allows` — entries added widen, removed narrow;
  `items: restricts` — entries removed widen, added narrow; `changed: weakens` — any change is a widening,
  for references such as an issuer or a secret store; `items: by_action` — each entry's own action says,
  Calico-style; `inverted_when` — a list that restricts in some modes, an Istio DENY policy's rules).
  The security specialist acts on these, and the drift agent's own check reads them as a second view.
- `pod_templates`: pointers to pod specs, so that the image, privilege, host and resource checks apply.
- `capacity`: numeric paths that set capacity or resilience (more is more capacity, unless `more_is: less`).
- `benign`: paths of plain configuration.

The drift agent's rules act on capacity, pod templates and benign paths. A changed path no section
names is `unclassified`, and so is every path of a kind no pack covers: unknown is never benign.
Everyone reads the packs through `load_packs` / `default_packs`; `meanings` classifies one drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.kit.datafile import load_yaml_model
from agents.kit.errors import KitConfigError
from agents.kit.pointers import MISSING, get, matches, walk
from protocol.models import Domain, Finding, FindingKind, ResourceDrift, ResourceRef, Severity

__all__ = [
    "BUILTIN_GROUPS",
    "DEFAULT_PACKS",
    "FIELD_HINTS",
    "Meaning",
    "PackError",
    "PackKind",
    "Packs",
    "PathMeaning",
    "default_packs",
    "is_builtin",
    "load_packs",
    "meanings",
    "teach",
    "unclassified_finding",
]

DEFAULT_PACKS = Path(__file__).with_name("packs")

BUILTIN_GROUPS = frozenset({
    "", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
    "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "certificates.k8s.io", "events.k8s.io",
    "flowcontrol.apiserver.k8s.io", "apiregistration.k8s.io", "resource.k8s.io",
})
"""API groups Kubernetes itself serves: their kinds are judged by code, not packs."""

FIELD_HINTS = (
    "enforcementaction", "validationfailureaction", "failurepolicy", "mtls", "tls", "action", "ingress",
    "egress", "privileged", "allow", "deny", "policy", "auth", "principal", "cidr", "exempt", "exclude",
    "permissive", "secret", "issuer", "selector", "replicas", "instances", "minreplica", "maxreplica",
    "scale", "resources", "limits",
)
"""Field-name fragments that suggest security or capacity meaning: they make an unclassified drift's
finding more severe (more careful), never less."""


class PackError(KitConfigError):
    """A pack file is missing or malformed; the message names the file and the field (the agent does not start)."""


class Inversion(BaseModel):
    """A list whose direction flips with the object's mode (an authorization policy's DENY rules restrict)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="JSON Pointer of the mode field")
    values: list[Any] = Field(min_length=1, description="modes (case-insensitive) in which the list restricts")

    def holds(self, doc: Any) -> bool:
        value = get(doc, self.path) if doc is not None else MISSING
        return _norm(value) in [_norm(v) for v in self.values]


class EntryAction(BaseModel):
    """Where a rule list's entries carry their own verdict (Calico: `action: Allow | Deny | Pass | Log`).

    An entry that is a plain value is its own verdict (Kyverno's `validationActions: [Deny, Audit]`)."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(default="action", min_length=1)
    allows: list[str] = Field(default_factory=list)
    restricts: list[str] = Field(min_length=1)
    neutral: list[str] = Field(default_factory=list)

    def sides(self, entry: Any) -> str:
        value = _norm(entry.get(self.field) if isinstance(entry, dict) else entry)
        for side, values in (("allows", self.allows), ("restricts", self.restricts), ("neutral", self.neutral)):
            if value in [_norm(v) for v in values]:
                return side
        return "unknown"


class Control(BaseModel):
    """One security control: a path and the direction that weakens it (exactly one of order/list/changed)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="JSON Pointer glob; the control covers everything under it")
    order: list[Any] | None = Field(default=None, description="values strongest first; compared case-insensitively")
    absent: Any = Field(default=MISSING, description="the value an absent field means (the API default)")
    items: Literal["allows", "restricts", "by_action"] | None = Field(
        default=None, description="a list: `allows` (entries added widen), `restricts` (entries removed widen), "
                                  "`by_action` (each entry's own action says which: see `entry_action`)")
    entry_action: EntryAction | None = None
    changed: Literal["weakens"] | None = None
    inverted_when: Inversion | None = None
    note: str = ""

    @model_validator(mode="after")
    def _one_direction(self) -> Control:
        given = [k for k in ("order", "items", "changed") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"control {self.path}: give exactly one of order, items, changed (got {given or 'none'})")
        if (self.items == "by_action") != (self.entry_action is not None):
            raise ValueError(f"control {self.path}: `items: by_action` and `entry_action` go together")
        return self


class CapacityPath(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1)
    what: str = Field(default="replicas", description="replicas | cpu | memory | autoscaler | another resource")
    more_is: Literal["more", "less"] = Field(default="more", description="`less`: a higher value is less capacity "
                                             "or resilience (how many may be unavailable)")


class PackKind(BaseModel):
    """The meaning of one API group's kinds."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1)
    kinds: list[str] = Field(min_length=1)
    security: list[Control] = Field(default_factory=list)
    pod_templates: list[str] = Field(default_factory=list)
    capacity: list[CapacityPath] = Field(default_factory=list)
    benign: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_builtin(self) -> PackKind:
        if self.group in BUILTIN_GROUPS:
            raise ValueError(f"group {self.group!r} is Kubernetes' own: its kinds are judged by code, not packs")
        return self


class Pack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = Field(min_length=1)
    docs: str = ""
    resources: list[PackKind] = Field(min_length=1)


class Meaning(StrEnum):
    WEAKENED = "weakened"
    STRENGTHENED = "strengthened"
    POD_TEMPLATE = "pod_template"
    CAPACITY = "capacity"
    BENIGN = "benign"
    UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class PathMeaning:
    """What one changed path of a drift means, by the pack (`pack` None: no pack covers the kind)."""

    path: str
    meaning: Meaning
    pack: str | None = None
    at: str = ""
    """the concrete pointer the pack's entry covers (a control's list, a pod template, a capacity field)"""
    before: Any = MISSING
    after: Any = MISSING
    what: str = ""
    detail: str = ""
    inverse: bool = False
    """capacity only: a higher value is less capacity or resilience"""

    @property
    def hinted(self) -> list[str]:
        low = self.path.lower()
        return [h for h in FIELD_HINTS if h in low]


@dataclass(frozen=True)
class Packs:
    """Every loaded pack, indexed by (group, kind)."""

    by_kind: dict[tuple[str, str], tuple[str, PackKind]]

    def lookup(self, group: str, kind: str) -> tuple[str, PackKind] | None:
        """The pack entry for a kind; `kinds: ["*"]` covers a group whose kinds users define (constraints)."""
        return self.by_kind.get((group, kind)) or self.by_kind.get((group, "*"))

    def projects(self) -> list[str]:
        return sorted({p for p, _ in self.by_kind.values()})


def is_builtin(group: str) -> bool:
    return group in BUILTIN_GROUPS


def load_packs(directory: Path = DEFAULT_PACKS) -> Packs:
    """Every `*.yaml` in `directory`; a (group, kind) named twice is an error naming both files."""
    if not directory.is_dir():
        raise PackError(f"knowledge packs directory {directory} does not exist")
    index: dict[tuple[str, str], tuple[str, PackKind]] = {}
    where: dict[tuple[str, str], Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        pack = load_yaml_model(path, Pack, what="knowledge pack", error=PackError)
        for res in pack.resources:
            for kind in res.kinds:
                key = (res.group, kind)
                if key in index:
                    raise PackError(f"knowledge pack {path}: {kind}.{res.group} is already described by "
                                    f"{where[key]}; describe each kind in one pack")
                index[key] = (pack.project, res)
                where[key] = path
    return Packs(index)


@cache
def default_packs() -> Packs:
    """The packs shipped beside this module (read once: they are package data, not configuration)."""
    return load_packs(DEFAULT_PACKS)


# --- classification ---------------------------------------------------------------------------------


def _prefixes(pointer: str) -> list[str]:
    segs = pointer.split("/")[1:] if pointer else []
    return ["/" + "/".join(segs[:i]) for i in range(len(segs), 0, -1)]


def _covering(glob: str, pointer: str) -> str | None:
    """The prefix of `pointer` (itself included) that `glob` matches, or None."""
    return next((p for p in _prefixes(pointer) if matches(glob, p)), None)


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _rank(control: Control, value: Any) -> int | None:
    if value is MISSING:
        value = control.absent
        if value is MISSING:
            return None
    order = [_norm(v) for v in control.order or []]
    v = _norm(value)
    return order.index(v) if v in order else None


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is MISSING or value is None else [value]


def _judge(control: Control, before: Any, after: Any, *, inverted: bool = False) -> tuple[Meaning, str]:
    if control.order is not None:
        b, a = _rank(control, before), _rank(control, after)
        show = f"{'absent' if before is MISSING else before!r} -> {'absent' if after is MISSING else after!r}"
        if b is None or a is None:
            ranked = ", ".join(map(str, control.order or []))
            return Meaning.UNCLASSIFIED, f"{show}: a value the pack does not rank ({ranked})"
        if a == b:
            return Meaning.BENIGN, f"{show}: same strength"
        return (Meaning.WEAKENED if a > b else Meaning.STRENGTHENED), show
    if control.items is not None:
        b_items, a_items = _items(before), _items(after)
        added = [x for x in a_items if x not in b_items]
        removed = [x for x in b_items if x not in a_items]
        if control.entry_action is not None:
            return _judge_by_action(control.entry_action, added, removed)
        allows = (control.items == "allows") != inverted
        widening, narrowing = (added, removed) if allows else (removed, added)
        word = "allowed" if allows else "restricted"
        if widening:
            return Meaning.WEAKENED, f"{len(widening)} entr{'y' if len(widening) == 1 else 'ies'} of what is {word} " \
                                     f"{'added' if allows else 'removed'}"
        if narrowing:
            return Meaning.STRENGTHENED, f"{len(narrowing)} entr{'y' if len(narrowing) == 1 else 'ies'} " \
                                         f"{'removed' if allows else 'added'}"
        return Meaning.BENIGN, "same entries, reordered"
    return Meaning.WEAKENED, "a security reference changed"


def _judge_by_action(entry: EntryAction, added: list[Any], removed: list[Any]) -> tuple[Meaning, str]:
    sides = [("added", entry.sides(x)) for x in added] + [("removed", entry.sides(x)) for x in removed]
    if any(side == "unknown" for _, side in sides):
        return Meaning.UNCLASSIFIED, f"a rule whose {entry.field} the pack does not know"
    widened = [w for w, side in sides if (w, side) in (("added", "allows"), ("removed", "restricts"))]
    if widened:
        return Meaning.WEAKENED, f"{len(widened)} rule(s) that let traffic through added or that stop it removed"
    if any(side != "neutral" for _, side in sides):
        return Meaning.STRENGTHENED, "rules that let traffic through removed or that stop it added"
    return Meaning.BENIGN, "only rules that neither allow nor deny changed"


def meanings(drift: ResourceDrift, packs: Packs) -> list[PathMeaning]:
    """The meaning of every changed path of a drift of a non-built-in kind (empty for Kubernetes' own kinds)."""
    ref = drift.ref
    if is_builtin(ref.group):
        return []
    paths = [c.path for c in drift.changes] or [""]
    found = packs.lookup(ref.group, ref.kind)
    if found is None:
        return [PathMeaning(p, Meaning.UNCLASSIFIED, detail=f"no knowledge pack describes {ref.kind}.{ref.group}")
                for p in paths]
    project, pk = found
    out: list[PathMeaning] = []
    for path in paths:
        out.append(_classify(path, drift, project, pk))
    return out


def _inside(glob: str, path: str, *docs: Any) -> list[str]:
    """Pointers below `path` (a changed subtree: an added or removed object) that `glob` matches."""
    out: dict[str, None] = {}
    for doc in docs:
        sub = get(doc, path) if doc is not None else MISSING
        if sub is MISSING:
            continue
        for rel, _ in walk(sub, skip=()):
            if rel and matches(glob, path + rel):
                out[path + rel] = None
    return list(out)


_RANK = {Meaning.WEAKENED: 0, Meaning.UNCLASSIFIED: 1, Meaning.STRENGTHENED: 2, Meaning.BENIGN: 3}


def _control(control: Control, path: str, drift: ResourceDrift, project: str) -> PathMeaning | None:
    target, live = drift.target, drift.live
    covering = _covering(control.path, path)
    ats = [covering] if covering is not None else _inside(control.path, path, target, live)
    judged: list[PathMeaning] = []
    for at in ats:
        before = get(target, at) if target is not None else MISSING
        after = get(live, at) if live is not None else MISSING
        inverted = control.inverted_when is not None and control.inverted_when.holds(live if live is not None
                                                                                       else target)
        meaning, detail = _judge(control, before, after, inverted=inverted)
        judged.append(PathMeaning(path, meaning, project, at, before, after, "security",
                                  detail + (f" ({control.note})" if control.note else "")))
    return min(judged, key=lambda m: _RANK[m.meaning]) if judged else None


def _classify(path: str, drift: ResourceDrift, project: str, pk: PackKind) -> PathMeaning:
    target, live = drift.target, drift.live
    for control in pk.security:
        found = _control(control, path, drift, project)
        if found is not None:
            return found
    for cap in pk.capacity:
        at = _covering(cap.path, path)
        if at is not None:
            before = get(target, at) if target is not None else MISSING
            after = get(live, at) if live is not None else MISSING
            return PathMeaning(path, Meaning.CAPACITY, project, at, before, after, cap.what,
                               inverse=cap.more_is == "less")
    for template in pk.pod_templates:
        at = _covering(template, path)
        if at is not None:
            return PathMeaning(path, Meaning.POD_TEMPLATE, project, at)
    if any(_covering(glob, path) is not None for glob in pk.benign):
        return PathMeaning(path, Meaning.BENIGN, project)
    return PathMeaning(path, Meaning.UNCLASSIFIED, project,
                       detail=f"the {project} pack does not name this path of {drift.ref.kind}")


def teach(group: str, kind: str, paths: list[str]) -> str:
    """How to make an unclassified drift known: the words both agents put in their reasons."""
    shown = ", ".join(paths[:6]) + (f" (+{len(paths) - 6} more)" if len(paths) > 6 else "")
    return (f"to teach Driftwise what {kind}.{group or 'core'} {shown or '(whole object)'} means, "
            f"name the path(s) in a knowledge pack (agents/kit/packs/<project>.yaml: group {group!r}, kind {kind!r}; "
            "README \"Teach Driftwise a custom resource\")")


def unclassified_finding(ref: ResourceRef, found: list[PathMeaning], domain: Domain) -> Finding:
    """The one finding an agent reports for a resource's unclassified paths: kind, paths, why, how to teach it.

    Field-name hints raise the severity (a more careful answer); they never make the change known."""
    paths = [m.path or "(whole object)" for m in found]
    hints = sorted({h for m in found for h in m.hinted})
    why = "; ".join(dict.fromkeys(m.detail for m in found if m.detail))
    return Finding(
        rule_id="pack.unclassified", domain=domain, kind=FindingKind.UNCLASSIFIED,
        severity=Severity.HIGH if hints else Severity.MEDIUM, resource=ref, path=found[0].path or None,
        message=f"{ref.kind} {ref.namespace or '-'}/{ref.name} ({ref.group}) changed {', '.join(paths[:6])}, whose "
                f"meaning cannot be established: {why}"
                + (f"; the field names suggest security or capacity meaning ({', '.join(hints)}), so nothing is "
                   "assumed harmless" if hints else "")
                + f"; {teach(ref.group, ref.kind, [m.path for m in found])}",
    )
