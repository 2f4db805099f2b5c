"""Walk a kind's OpenAPI v3 schema along a JSON Pointer: the field's description, type, enum and default.

A CRD's structural schema nests inline (`properties`, arrays through `items`, maps through
`additionalProperties`); the API server's published documents also point into
`components.schemas` with `$ref` (metadata as `allOf: [{$ref}]`), which the walk follows. A segment
the schema does not define is `not_in_schema`; one below a node that accepts anything
(`x-kubernetes-preserve-unknown-fields`, `additionalProperties: true`) is `free_form`. Either way
the answer names the deepest ancestor the schema has, so nothing asked about is dropped.
"""

from __future__ import annotations

from typing import Any

from protocol.context import FieldDescription

Obj = dict[str, Any]
REF_PREFIX = "#/components/schemas/"
MAX_REF_HOPS = 16
"""A chain of references longer than this is a loop in the document, not a schema."""
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_FIELDS: Obj = {
    "apiVersion": {"type": "string", "description": "The versioned schema of this representation of the object."},
    "kind": {"type": "string", "description": "The REST resource this object represents, in CamelCase."},
    "metadata": {
        "type": "object",
        "description": "Standard object metadata (ObjectMeta), the same for every kind.",
        "properties": {
            "name": {"type": "string", "description": "The object's name, unique within its namespace."},
            "namespace": {"type": "string", "description": "The namespace the object lives in."},
            "labels": {**_STRINGS, "description": "Keys and values that organize and select objects (selectors "
                       "and policies may match on them)."},
            "annotations": {**_STRINGS, "description": "Unstructured key-value metadata set by tools and people; "
                            "not queryable."},
        },
        "additionalProperties": True,
    },
}
"""What the API server adds to every CRD's schema when it publishes it; a CRD's own schema leaves them out."""


def pointer_segments(pointer: str) -> list[str]:
    """RFC 6901: "/spec/a~1b/0" -> ["spec", "a/b", "0"]."""
    if not pointer:
        return []
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


class SchemaWalker:
    def __init__(self, root: Obj, components: Obj | None = None) -> None:
        self._components = components or {}
        resolved = self._resolve(root)
        self.root = {**resolved, "properties": {**OBJECT_FIELDS, **(resolved.get("properties") or {})}}

    def _resolve(self, node: Any) -> Obj:
        """The schema a node stands for: a `$ref` (or an `allOf` of one) followed, the node's own keys winning."""
        if not isinstance(node, dict):
            return {}
        for _ in range(MAX_REF_HOPS):
            ref = node.get("$ref")
            all_of = node.get("allOf")
            if ref is None and isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
                ref = all_of[0].get("$ref")
            if not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
                return node
            target = self._components.get(ref.removeprefix(REF_PREFIX))
            if not isinstance(target, dict):
                return node
            own = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
            node = {**target, **own}
        return node

    def type_of(self, node: Obj, depth: int = 0) -> str:
        """The type as kubectl explain writes it: string, []string, map[string]string, int-or-string..."""
        if node.get("x-kubernetes-int-or-string"):
            return "int-or-string"
        kind = node.get("type")
        if depth < 4 and kind == "array" and isinstance(node.get("items"), dict):
            return "[]" + (self.type_of(self._resolve(node["items"]), depth + 1) or "Object")
        extra = node.get("additionalProperties")
        if depth < 4 and kind == "object" and isinstance(extra, dict) and not node.get("properties"):
            return "map[string]" + (self.type_of(self._resolve(extra), depth + 1) or "Object")
        if isinstance(kind, str):
            return kind
        return "object" if node.get("properties") else ""

    def describe(self, pointer: str) -> FieldDescription:
        node, where, inherited = self.root, "", ""
        for segment in pointer_segments(pointer):
            props = node.get("properties")
            items, extra = node.get("items"), node.get("additionalProperties")
            if isinstance(props, dict) and segment in props:
                node, where, inherited = self._resolve(props[segment]), f"{where}.{segment}".lstrip("."), ""
            elif isinstance(items, dict) and (segment.isdigit() or segment == "-"):
                # an array's items rarely carry a description of their own: the array's says what they are
                inherited = str(node.get("description") or inherited)
                node, where = self._resolve(items), f"{where}[]"
            elif isinstance(extra, dict):
                inherited = str(node.get("description") or inherited)
                node, where = self._resolve(extra), f"{where}[{segment}]"
            elif extra is True or node.get("x-kubernetes-preserve-unknown-fields"):
                return self._field(pointer, "free_form", node, where, inherited,
                                   f"the schema accepts any value below {where or 'the object root'} "
                                   "(x-kubernetes-preserve-unknown-fields): it does not describe this path")
            else:
                kind = self.type_of(node) or "untyped"
                return FieldDescription(
                    path=pointer, status="not_in_schema", schema_path=where,
                    note=f"{where or 'the object root'} ({kind}) has no field {segment!r} in the schema")
        return self._field(pointer, "described", node, where, inherited, "")

    def _field(self, pointer: str, status: Any, node: Obj, where: str, inherited: str, note: str) -> FieldDescription:
        enum = node.get("enum")
        return FieldDescription(
            path=pointer, status=status, schema_path=where, type=self.type_of(node),
            format=str(node.get("format") or ""), description=str(node.get("description") or inherited),
            enum=list(enum) if isinstance(enum, list) else [], default=node.get("default"), note=note,
        )
