"""The CustomResourceDefinitions a scenario carries: the kinds they serve and their OpenAPI v3 documents.

A scenario lists CRDs as ordinary `apiextensions.k8s.io/v1` objects in `kubernetes.objects`. From them
the sandbox's Kubernetes API serves what a real API server derives from a CRD: the resource in
discovery (plural, singular, short names, categories, scope, one entry per served version) and
`/openapi/v3` (the discovery document) with one document per group version, whose
`components.schemas` hold each kind's structural schema under its REST-friendly name
(`security.istio.io/v1.AuthorizationPolicy` -> `io.istio.security.v1.AuthorizationPolicy`), with
apiVersion, kind and metadata set the way the apiextensions server's OpenAPI builder sets them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from driftwise.sandbox.kinds import ResourceType

Obj = dict[str, Any]
CRD_API_VERSION = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META_REF = f"#/components/schemas/{META}.ObjectMeta"
LIST_META_REF = f"#/components/schemas/{META}.ListMeta"
_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
API_VERSION_FIELD = {
    "type": "string",
    "description": "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    f"{_CONVENTIONS}#resources",
}
KIND_FIELD = {
    "type": "string",
    "description": "Kind is a string value representing the REST resource this object represents. Servers may "
    "infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    f"{_CONVENTIONS}#types-kinds",
}
# The apimachinery types every CRD document references, cut to the fields a reader of a drift needs.
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
META_SCHEMAS: dict[str, Obj] = {
    f"{META}.ObjectMeta": {
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects "
        "users must create.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Name must be unique within a namespace."},
            "namespace": {"type": "string", "description": "Namespace defines the space within which each name "
                          "must be unique. An empty namespace is equivalent to the \"default\" namespace."},
            "labels": {**_STR_MAP, "description": "Map of string keys and values that can be used to organize "
                       "and categorize (scope and select) objects."},
            "annotations": {**_STR_MAP, "description": "Annotations is an unstructured key value map stored "
                            "with a resource that may be set by external tools to store and retrieve arbitrary "
                            "metadata. They are not queryable and should be preserved when modifying objects."},
            "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing "
                           "a specific generation of the desired state. Populated by the system. Read-only."},
            "resourceVersion": {"type": "string", "description": "An opaque value that represents the internal "
                                "version of this object."},
            "uid": {"type": "string", "description": "UID is the unique in time and space value for this object."},
        },
    },
    f"{META}.ListMeta": {
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and "
        "various status objects.",
        "type": "object",
        "properties": {
            "resourceVersion": {"type": "string", "description": "String that identifies the server's internal "
                                "version of this object."},
            "continue": {"type": "string", "description": "continue may be set if the user set a limit on the "
                         "number of items returned."},
        },
    },
}


class CrdError(ValueError):
    """A CustomResourceDefinition in a scenario is malformed (raised at load, inside the scenario's error)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Names(_Model):
    kind: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$")
    plural: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    singular: str = ""
    short_names: list[str] = Field(default_factory=list, alias="shortNames")
    categories: list[str] = Field(default_factory=list)
    list_kind: str = Field(default="", alias="listKind")


class _Validation(_Model):
    open_api_v3_schema: Obj = Field(alias="openAPIV3Schema")


class _Version(_Model):
    name: str = Field(pattern=r"^v[0-9a-z]+$")
    served: bool
    storage: bool
    schema_: _Validation | None = Field(default=None, alias="schema")
    printer_columns: list[Obj] = Field(default_factory=list, alias="additionalPrinterColumns")


class _Spec(_Model):
    group: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
    names: _Names
    scope: Literal["Namespaced", "Cluster"]
    versions: list[_Version] = Field(min_length=1)


class _Meta(_Model):
    name: str


class _Crd(_Model):
    metadata: _Meta
    spec: _Spec

    @model_validator(mode="after")
    def _consistent(self) -> _Crd:
        expected = f"{self.spec.names.plural}.{self.spec.group}"
        if self.metadata.name != expected:
            raise ValueError(f"metadata.name must be {expected!r} (<spec.names.plural>.<spec.group>), "
                             f"as the API server requires")
        if sum(v.storage for v in self.spec.versions) != 1:
            raise ValueError("exactly one of spec.versions must have storage: true")
        return self


@dataclass(frozen=True)
class ServedVersion:
    """One served version of one CRD: its resource type and its structural schema (None if it has none)."""

    type: ResourceType
    schema: Obj | None
    list_kind: str
    printer_columns: tuple[Obj, ...] = ()

    @property
    def schema_name(self) -> str:
        return rest_friendly_name(self.type.group, self.type.version, self.type.kind)


def is_crd(obj: Obj) -> bool:
    return obj.get("apiVersion") == CRD_API_VERSION and obj.get("kind") == CRD_KIND


def parse_crd(obj: Obj) -> list[ServedVersion]:
    """The served versions of a CRD object; CrdError naming the problem when it is malformed."""
    try:
        crd = _Crd.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        where = f"{loc}: " if loc else ""
        message = str(err["msg"]).removeprefix("Value error, ")
        raise CrdError(f"CustomResourceDefinition {(obj.get('metadata') or {}).get('name')!r}: {where}{message}") \
            from None
    names, spec = crd.spec.names, crd.spec
    return [
        ServedVersion(
            type=ResourceType(spec.group, v.name, names.kind, names.plural, spec.scope == "Namespaced",
                              tuple(names.short_names), singular=names.singular or names.kind.lower(),
                              categories=tuple(names.categories)),
            schema=v.schema_.open_api_v3_schema if v.schema_ else None,
            list_kind=names.list_kind or f"{names.kind}List",
            printer_columns=tuple(v.printer_columns),
        )
        for v in spec.versions
        if v.served
    ]


def rest_friendly_name(group: str, version: str, kind: str) -> str:
    """The OpenAPI definition name the API server gives a kind: the group's DNS labels reversed, then version, kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


class CrdIndex:
    """Every served version of every CRD in a world, and the OpenAPI v3 documents they make."""

    def __init__(self, crds: list[Obj]) -> None:
        self.served: list[ServedVersion] = [v for obj in crds for v in parse_crd(obj)]
        self._documents: dict[tuple[str, str], tuple[Obj, str]] = {}
        for group, version in dict.fromkeys((v.type.group, v.type.version) for v in self.served):
            doc = self._document(group, version)
            self._documents[(group, version)] = (doc, _hash(doc))

    def types(self) -> list[ResourceType]:
        return [v.type for v in self.served]

    def printer_columns(self, group: str, version: str, kind: str) -> list[Obj]:
        """The additionalPrinterColumns of a served kind (empty when it declares none or is no CRD's)."""
        for v in self.served:
            if (v.type.group, v.type.version, v.type.kind) == (group, version, kind):
                return list(v.printer_columns)
        return []

    def documents(self) -> list[Obj]:
        return [doc for doc, _ in self._documents.values()]

    def discovery(self) -> Obj:
        """`GET /openapi/v3`: the group versions with a document, each with its content-hashed URL."""
        return {"paths": {f"apis/{g}/{v}": {"serverRelativeURL": f"/openapi/v3/apis/{g}/{v}?hash={digest}"}
                          for (g, v), (_, digest) in self._documents.items()}}

    def document(self, group: str, version: str) -> tuple[Obj, str] | None:
        """`GET /openapi/v3/apis/{group}/{version}`: the document and its hash (the ETag), or None."""
        return self._documents.get((group, version))

    def _document(self, group: str, version: str) -> Obj:
        schemas: Obj = {}
        paths: Obj = {}
        for sv in self.served:
            if (sv.type.group, sv.type.version) != (group, version):
                continue
            gvk = {"group": group, "kind": sv.type.kind, "version": version}
            schemas[sv.schema_name] = _kind_schema(sv.schema, gvk)
            list_name = rest_friendly_name(group, version, sv.list_kind)
            schemas[list_name] = _list_schema(sv, list_name)
            paths.update(read_paths(sv.type, sv.schema_name, list_name))
        schemas.update(copy.deepcopy(META_SCHEMAS))
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
                "paths": paths, "components": {"schemas": schemas}}


def _kind_schema(schema: Obj | None, gvk: Obj) -> Obj:
    out = copy.deepcopy(schema) if schema else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    props = out.setdefault("properties", {})
    props["apiVersion"] = dict(API_VERSION_FIELD)
    props["kind"] = dict(KIND_FIELD)
    props["metadata"] = {"description": f"Standard object's metadata. More info: {_CONVENTIONS}#metadata",
                         "allOf": [{"$ref": OBJECT_META_REF}]}
    out["x-kubernetes-group-version-kind"] = [gvk]
    return out


def _list_schema(sv: ServedVersion, list_name: str) -> Obj:
    t = sv.type
    return {
        "description": f"{sv.list_kind} is a list of {t.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": dict(API_VERSION_FIELD),
            "items": {"description": f"List of {t.plural}. More info: "
                      "https://git.k8s.io/community/contributors/devel/api-conventions.md",
                      "type": "array", "items": {"$ref": f"#/components/schemas/{sv.schema_name}"}},
            "kind": dict(KIND_FIELD),
            "metadata": {"description": f"Standard list metadata. More info: {_CONVENTIONS}#types-kinds",
                         "allOf": [{"$ref": LIST_META_REF}]},
        },
        "x-kubernetes-group-version-kind": [{"group": t.group, "kind": sv.list_kind, "version": t.version}],
    }


def _operation_id(verb: str, t: ResourceType) -> str:
    parts = [p.capitalize() for p in (t.group or "core").replace("-", ".").split(".")]
    scope = "Namespaced" if t.namespaced else ""
    return f"{verb}{''.join(parts)}{t.version.capitalize()}{scope}{t.kind}"


def read_paths(t: ResourceType, schema_name: str, list_name: str) -> Obj:
    """The read operations on the kind (the sandbox serves no writes), as the API server documents them."""
    base = f"/apis/{t.group}/{t.version}" if t.group else f"/api/{t.version}"
    scoped = f"{base}/namespaces/{{namespace}}/{t.plural}" if t.namespaced else f"{base}/{t.plural}"

    def op(verb: str, action: str, ref: str, what: str) -> Obj:
        return {"get": {
            "tags": [f"{t.group}_{t.version}"],
            "description": what,
            "operationId": _operation_id(verb, t),
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
                "$ref": f"#/components/schemas/{ref}"}}}}, "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
        }}

    paths = {
        scoped: op("list", "list", list_name, f"list objects of kind {t.kind}"),
        f"{scoped}/{{name}}": op("read", "get", schema_name, f"read the specified {t.kind}"),
    }
    if t.namespaced:
        paths[f"{base}/{t.plural}"] = op("list", "list", list_name, f"list objects of kind {t.kind}")
    return paths


def _hash(doc: Obj) -> str:
    # kube-openapi's ETag: the upper-case hex SHA-512 of the document's bytes.
    return hashlib.sha512(json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()).hexdigest().upper()
