"""The Kubernetes API server's published schemas: `/openapi/v2` and `/openapi/v3` for the built-in kinds.

The source is the schema set the project already validates manifests against (kubernetes-validate's
`_definitions.json` for KUBERNETES_VERSION, itself generated from the API server's OpenAPI), turned back
into what the API server publishes: JSON Schema's nullable types (`["integer", "null"]`) become plain
types, `#/$defs/` references become `#/definitions/` (v2) or `#/components/schemas/` (v3, where a
reference with siblings is wrapped in `allOf` as kube-openapi does), and the int-or-string and quantity
unions become the API server's `string` with its format. A v3 document per group version holds the kinds
of that group version and every definition they reach; the world's CRDs add their own documents
(driftwise.sandbox.crds).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from driftwise.sandbox.crds import read_paths
from driftwise.sandbox.kinds import KNOWN

Obj = dict[str, Any]
KUBERNETES_VERSION = "1.35.0"
"""The Kubernetes release the sandbox's API server claims to be, and whose schemas it publishes."""
_DEFS = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local/_definitions.json"
_SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
        "marshalling and unmarshalling, it produces or consumes the inner type.",
        "type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number.", "type": "string"},
}


def version_info() -> Obj:
    """`GET /version`, as the API server's version.Info."""
    major, minor, _ = KUBERNETES_VERSION.split(".")
    return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
            "minCompatibilityMajor": major, "minCompatibilityMinor": str(int(minor) - 1),
            "gitVersion": f"v{KUBERNETES_VERSION}", "gitCommit": "driftwise-sandbox", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
            "platform": "linux/amd64"}


def _load() -> dict[str, Obj]:
    source = resources.files("kubernetes_validate").joinpath(_DEFS)
    return json.loads(source.read_text())["$defs"]


def _convert(node: Any, prefix: str, wrap_refs: bool) -> Any:
    """One schema node converted; `properties` maps names to schemas (a property may be named `$ref`)."""
    if isinstance(node, list):
        return [_convert(v, prefix, wrap_refs) for v in node]
    if not isinstance(node, dict):
        return node
    out: Obj = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            # the API server's apiVersion and kind carry no enum: one schema serves every version's path
            out[key] = {name: _convert({k: v for k, v in prop.items() if not (name in ("apiVersion", "kind")
                                                                                and k == "enum")},
                                       prefix, wrap_refs) if isinstance(prop, dict) else prop
                        for name, prop in value.items()}
        elif key != "$ref":
            out[key] = _convert(value, prefix, wrap_refs)
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) == 1:
            out["type"] = kinds[0]
        else:
            out.pop("type")
    if isinstance(node.get("enum"), list):
        out["enum"] = [v for v in node["enum"] if v is not None]
    if isinstance(node.get("$ref"), str):
        ref = prefix + node["$ref"].removeprefix("#/$defs/")
        if wrap_refs and out:
            out["allOf"] = [{"$ref": ref}]
        else:
            out["$ref"] = ref
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def _hash(doc: Obj) -> str:
    return hashlib.sha512(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()).hexdigest().upper()


@dataclass
class BuiltinSchemas:
    """The built-in kinds' documents, converted on first use and kept for the life of the process.

    Built in worker threads (asyncio.to_thread: the conversion takes a fraction of a second), one at a time.
    """

    _raw: dict[str, Obj] | None = None
    _v3: dict[tuple[str, str], tuple[Obj, str]] = field(default_factory=dict)
    _v2: Obj | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _defs(self) -> dict[str, Obj]:
        if self._raw is None:
            raw = _load()
            raw.update(copy.deepcopy(_SPECIAL))
            self._raw = raw
        return self._raw

    def document(self, group: str, version: str) -> tuple[Obj, str] | None:
        """The v3 document of one group version and its hash, or None if no built-in kind is in it."""
        with self._lock:
            return self._document(group, version)

    def _document(self, group: str, version: str) -> tuple[Obj, str] | None:
        key = (group, version)
        if key not in self._v3:
            defs = self._defs()
            roots = [name for name, d in defs.items()
                     if any((g["group"], g["version"]) == key for g in d.get("x-kubernetes-group-version-kind") or [])]
            if not roots:
                return None
            wanted, todo = set(), list(roots)
            while todo:
                name = todo.pop()
                if name in wanted or name not in defs:
                    continue
                wanted.add(name)
                found: set[str] = set()
                _refs(defs[name], found)
                todo.extend(found - wanted)
            schemas = {n: _convert(defs[n], "#/components/schemas/", True) for n in sorted(wanted)}
            doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{KUBERNETES_VERSION}"},
                   "paths": self._paths(group, version), "components": {"schemas": schemas}}
            self._v3[key] = (doc, _hash(doc))
        return self._v3[key]

    def _paths(self, group: str, version: str) -> Obj:
        """The read paths of the served kinds of this group version: kubectl explain finds a kind through them."""
        by_gvk = {(g["group"], g["version"], g["kind"]): name for name, d in self._defs().items()
                  for g in d.get("x-kubernetes-group-version-kind") or []}
        paths: Obj = {}
        for t in KNOWN:
            kind_name, list_name = by_gvk.get((group, version, t.kind)), by_gvk.get((group, version, f"{t.kind}List"))
            if (t.group, t.version) == (group, version) and kind_name and list_name:
                paths.update(read_paths(t, kind_name, list_name))
        return paths

    def swagger(self, crd_documents: list[Obj]) -> Obj:
        """`GET /openapi/v2`: every built-in definition, plus the world's CRD schemas."""
        with self._lock:
            if self._v2 is None:
                self._v2 = {n: _convert(d, "#/definitions/", False) for n, d in self._defs().items()}
            definitions = dict(self._v2)
        for doc in crd_documents:
            text = json.dumps(doc["components"]["schemas"]).replace('"#/components/schemas/', '"#/definitions/')
            for name, schema in json.loads(text).items():
                definitions.setdefault(name, schema)
        return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": f"v{KUBERNETES_VERSION}"},
                "paths": {}, "definitions": definitions}


def v3_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"
