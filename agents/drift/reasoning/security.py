"""The drift agent's own security check (defence in depth beside the security specialist).

Rubric rule 1: a drift that widens privilege or exposure is reverted now. Each check compares
Git's manifest (target) with the cluster's (live) for one resource and returns typed findings
that name the exact JSON Pointer; nothing here looks at object names or free text.
"""

from __future__ import annotations

from itertools import product
from typing import Any

from agents.kit.knowledge import Meaning, Packs, default_packs, is_builtin, meanings
from agents.kit.workloads import (
    container_map,
    dig,
    images,
    pod_spec,
    pod_spec_pointer,
    registry,
)
from protocol.models import Domain, Finding, FindingKind, ResourceDrift, Severity

RBAC_ROLE_KINDS = frozenset({"Role", "ClusterRole"})
RBAC_BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})
SECURITY_KINDS = RBAC_ROLE_KINDS | RBAC_BINDING_KINDS | {
    "NetworkPolicy", "Secret", "ServiceAccount", "PodSecurityPolicy", "Ingress",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "AuthorizationPolicy",
    "PeerAuthentication", "CiliumNetworkPolicy",
}
"""Kinds whose every change has security meaning (the security specialist must see them)."""

SECURITY_PATH_WORDS = (
    "securityContext", "image", "serviceAccount", "automountServiceAccountToken", "hostNetwork", "hostPID",
    "hostIPC", "hostPath", "hostPort", "volumes", "capabilities", "privileged", "runAsUser", "runAsNonRoot",
    "seccompProfile", "appArmor", "apparmor", "procMount", "externalIPs", "loadBalancerSourceRanges",
    "pod-security.kubernetes.io", "source-range", "ingress.kubernetes.io",
)
"""Path fragments with security meaning in any kind (a path containing one is security-relevant)."""


def _finding(rule: str, sev: Severity, drift: ResourceDrift, path: str, message: str) -> Finding:
    return Finding(rule_id=rule, domain=Domain.SECURITY, kind=FindingKind.WIDENED, severity=sev, resource=drift.ref,
                   path=path, message=message)


def is_security_path(path: str) -> bool:
    low = path.lower()
    return any(word.lower() in low for word in SECURITY_PATH_WORDS)


def is_security_relevant(drift: ResourceDrift) -> bool:
    """Whether the security specialist's view is needed for this resource's drift (any custom resource's is)."""
    if drift.ref.kind in SECURITY_KINDS or not is_builtin(drift.ref.group):
        return True
    return any(is_security_path(c.path) for c in drift.changes)


def widening_findings(drift: ResourceDrift, trusted_registries: set[str], packs: Packs | None = None) -> list[Finding]:
    """Every way this resource's live state widens privilege or exposure, or weakens a control a pack names."""
    target, live = drift.target or {}, drift.live or {}
    out: list[Finding] = []
    out += _pod_findings(drift, target, live, trusted_registries)
    out += _mesh_findings(drift, target, live)
    if not is_builtin(drift.ref.group):
        out += [_finding(f"pack.{m.pack}.control-weakened", Severity.HIGH, drift, m.at or m.path,
                         f"security control weakened ({m.pack} pack): {m.detail}")
                for m in meanings(drift, packs or default_packs()) if m.meaning == Meaning.WEAKENED]
    # The kind checks below read Kubernetes' own kinds; a custom kind of the same name means what its pack says.
    kind = drift.ref.kind if is_builtin(drift.ref.group) else ""
    if kind in RBAC_ROLE_KINDS:
        out += _role_findings(drift, target, live)
    elif kind in RBAC_BINDING_KINDS:
        out += _binding_findings(drift, target, live)
    elif kind == "NetworkPolicy":
        out += _netpol_findings(drift, target, live)
    elif kind == "Service":
        out += _service_findings(drift, target, live)
    elif kind == "Ingress":
        out += _ingress_findings(drift, target, live)
    elif kind == "Namespace":
        out += _pod_security_findings(drift, target, live)
    elif kind == "ServiceAccount" and target.get("automountServiceAccountToken") is False \
            and live.get("automountServiceAccountToken") is not False:
        # Every pod of the account now carries API credentials Git keeps out of them.
        out.append(_finding("security.token_mount", Severity.HIGH, drift, "/automountServiceAccountToken",
                            "service account token automounted although Git disables it"))
    return out


def trusted_registries(drifts: list[ResourceDrift]) -> set[str]:
    """Registries the Git target already uses for this application (the README's trust rule)."""
    return {registry(img) for d in drifts for img in images(d.target)}


# --- pods -------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    return value is True


def _pod_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any],
                  trusted: set[str]) -> list[Finding]:
    t_spec, l_spec = pod_spec(target), pod_spec(live)
    if l_spec is None:
        return []
    t_spec = t_spec or {}
    base = pod_spec_pointer(live)
    out: list[Finding] = []
    for field in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        widened = (l_spec.get(field) is False) if field == "hostUsers" else _truthy(l_spec.get(field))
        was = (t_spec.get(field) is False) if field == "hostUsers" else _truthy(t_spec.get(field))
        if widened and not was:
            out.append(_finding("security.host_access", Severity.HIGH, drift, f"{base}/{field}",
                                f"{field} set in the cluster, not in Git"))
    t_hostpaths = {v.get("name") for v in t_spec.get("volumes") or [] if isinstance(v, dict) and "hostPath" in v}
    for i, vol in enumerate(l_spec.get("volumes") or []):
        if isinstance(vol, dict) and "hostPath" in vol and vol.get("name") not in t_hostpaths:
            out.append(_finding("security.host_path", Severity.HIGH, drift, f"{base}/volumes/{i}/hostPath",
                                f"hostPath volume {dig(vol, 'hostPath', 'path')!r} mounted"))
    out += _context_findings(drift, dig(t_spec, "securityContext") or {}, dig(l_spec, "securityContext") or {},
                             f"{base}/securityContext", pod_level=True)
    if l_spec.get("automountServiceAccountToken") is not False and t_spec.get("automountServiceAccountToken") is False:
        out.append(_finding("security.token_mount", Severity.MEDIUM, drift, f"{base}/automountServiceAccountToken",
                            "service account token mounted although Git disables it"))
    t_containers = container_map(t_spec)
    for (list_name, name), (i, c) in container_map(l_spec).items():
        path = f"{base}/{list_name}/{i}"
        tc = t_containers.get((list_name, name), (None, {}))[1]
        out += _context_findings(drift, tc.get("securityContext") or {}, c.get("securityContext") or {},
                                 f"{path}/securityContext", pod_level=False)
        image = c.get("image")
        if isinstance(image, str) and trusted and registry(image) not in trusted:
            out.append(_finding("security.untrusted_image", Severity.HIGH, drift, f"{path}/image",
                                f"image {image!r} comes from {registry(image)}, a registry this app's Git never "
                                f"uses ({', '.join(sorted(trusted))})"))
        t_ports = {(p.get("hostPort")) for p in tc.get("ports") or [] if isinstance(p, dict)}
        for j, port in enumerate(c.get("ports") or []):
            if isinstance(port, dict) and port.get("hostPort") and port.get("hostPort") not in t_ports:
                out.append(_finding("security.host_port", Severity.MEDIUM, drift, f"{path}/ports/{j}/hostPort",
                                    f"hostPort {port.get('hostPort')} opened on the node"))
    return out


def _context_findings(drift: ResourceDrift, t: dict[str, Any], live: dict[str, Any], path: str,
                      *, pod_level: bool) -> list[Finding]:
    out: list[Finding] = []
    if not pod_level and _truthy(live.get("privileged")) and not _truthy(t.get("privileged")):
        out.append(_finding("security.privileged", Severity.CRITICAL, drift, f"{path}/privileged",
                            "container runs privileged"))
    if live.get("runAsUser") == 0 and t.get("runAsUser") != 0:
        out.append(_finding("security.root", Severity.HIGH, drift, f"{path}/runAsUser", "runs as root (uid 0)"))
    if _truthy(t.get("runAsNonRoot")) and not _truthy(live.get("runAsNonRoot")):
        out.append(_finding("security.root", Severity.HIGH, drift, f"{path}/runAsNonRoot",
                            "runAsNonRoot removed: the container may run as root"))
    if not pod_level:
        if t.get("allowPrivilegeEscalation") is False and live.get("allowPrivilegeEscalation") is not False:
            out.append(_finding("security.privilege_escalation", Severity.HIGH, drift,
                                f"{path}/allowPrivilegeEscalation", "privilege escalation no longer blocked"))
        t_add = set(dig(t, "capabilities", "add") or [])
        added = [c for c in dig(live, "capabilities", "add") or [] if c not in t_add]
        if added:
            out.append(_finding("security.capabilities_added", Severity.HIGH, drift, f"{path}/capabilities/add",
                                f"capabilities added: {', '.join(map(str, added))}"))
        l_drop = set(dig(live, "capabilities", "drop") or [])
        dropped_less = [c for c in dig(t, "capabilities", "drop") or [] if c not in l_drop]
        if dropped_less:
            out.append(_finding("security.capabilities_added", Severity.HIGH, drift, f"{path}/capabilities/drop",
                                f"capabilities no longer dropped: {', '.join(map(str, dropped_less))}"))
        if _truthy(t.get("readOnlyRootFilesystem")) and not _truthy(live.get("readOnlyRootFilesystem")):
            out.append(_finding("security.writable_root", Severity.MEDIUM, drift, f"{path}/readOnlyRootFilesystem",
                                "root filesystem made writable"))
        if live.get("procMount") == "Unmasked" and t.get("procMount") != "Unmasked":
            out.append(_finding("security.proc_mount", Severity.HIGH, drift, f"{path}/procMount", "/proc unmasked"))
    for profile in ("seccompProfile", "appArmorProfile"):
        if dig(live, profile, "type") == "Unconfined" and dig(t, profile, "type") != "Unconfined":
            out.append(_finding("security.seccomp", Severity.MEDIUM, drift, f"{path}/{profile}",
                                f"{profile} set to Unconfined"))
    return out


# --- mesh membership ------------------------------------------------------------------------------

MESH_ON = {"linkerd.io/inject": ("enabled",), "sidecar.istio.io/inject": ("true",), "istio-injection": ("enabled",),
           "istio.io/dataplane-mode": ("ambient",)}
"""Labels and annotations that put pods in a mesh (mTLS, mesh authorization), with the values that do."""


def _mesh_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any]) -> list[Finding]:
    """A workload or namespace taken out of the mesh: it loses mTLS and mesh authorization (rule 1)."""
    out: list[Finding] = []
    for base in (("metadata",), ("spec", "template", "metadata")):
        for section in ("annotations", "labels"):
            t_map, l_map = dig(target, *base, section) or {}, dig(live, *base, section) or {}
            for key, on in MESH_ON.items():
                if str(t_map.get(key)).lower() in on and str(l_map.get(key)).lower() not in on:
                    pointer = "/" + "/".join((*base, section, key.replace("~", "~0").replace("/", "~1")))
                    out.append(_finding("security.mesh_left", Severity.HIGH, drift, pointer,
                                        f"{key} {t_map.get(key)} -> {l_map.get(key, 'removed')}: out of the mesh"))
    return out


# --- RBAC -------------------------------------------------------------------------------------


def _grants(rules: Any) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict):
            continue
        if rule.get("nonResourceURLs"):
            out += [("#url", u, v, "") for u, v in product(rule["nonResourceURLs"], rule.get("verbs") or [])]
            continue
        names = rule.get("resourceNames") or [""]
        out += list(product(rule.get("apiGroups") or [""], rule.get("resources") or [], rule.get("verbs") or [],
                            names))
    return out


def _covers(grant: tuple[str, str, str, str], by: tuple[str, str, str, str]) -> bool:
    return all(b == "*" or b == g or (i == 3 and b == "") for i, (g, b) in enumerate(zip(grant, by, strict=True)))


def _role_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any]) -> list[Finding]:
    t_grants = _grants(target.get("rules"))
    new = [g for g in _grants(live.get("rules")) if not any(_covers(g, t) for t in t_grants)]
    out: list[Finding] = []
    if new:
        wild = any("*" in g[:3] for g in new)
        secrets = any(g[1] in ("secrets", "*") for g in new)
        sev = Severity.CRITICAL if wild or secrets else Severity.HIGH
        shown = ", ".join(f"{v} {r or '-'} ({a or 'core'})" for a, r, v, _ in new[:6])
        out.append(_finding("security.rbac_widened", sev, drift, "/rules",
                            f"role grants more than Git: {shown}" + (" …" if len(new) > 6 else "")))
    if live.get("aggregationRule") and live.get("aggregationRule") != target.get("aggregationRule"):
        out.append(_finding("security.rbac_widened", Severity.HIGH, drift, "/aggregationRule",
                            "aggregation rule changed: the role may absorb other roles"))
    return out


def _binding_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    if live.get("roleRef") != target.get("roleRef"):
        out.append(_finding("security.rbac_widened", Severity.HIGH, drift, "/roleRef",
                            f"binding now refers to {dig(live, 'roleRef', 'kind')} {dig(live, 'roleRef', 'name')}"))
    t_subjects = [s for s in target.get("subjects") or []]
    added = [s for s in live.get("subjects") or [] if s not in t_subjects]
    if added:
        who = ", ".join(f"{dig(s, 'kind')} {dig(s, 'name')}" for s in added[:5])
        out.append(_finding("security.rbac_widened", Severity.HIGH, drift, "/subjects", f"subjects added: {who}"))
    return out


# --- namespaces ---------------------------------------------------------------------------------

PSA_LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


def _pod_security_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any]) -> list[Finding]:
    """Pod Security Admission enforce level lowered (no label = privileged, the admission default)."""
    t_level = (dig(target, "metadata", "labels") or {}).get(PSA_ENFORCE)
    l_level = (dig(live, "metadata", "labels") or {}).get(PSA_ENFORCE)
    if t_level is None or t_level == l_level:
        return []
    if PSA_LEVELS.get(str(l_level), 0) >= PSA_LEVELS.get(str(t_level), 0):
        return []
    return [_finding("security.pod_security_lowered", Severity.HIGH, drift,
                     "/metadata/labels/" + PSA_ENFORCE.replace("/", "~1"),
                     f"pod security enforce level {t_level} -> {l_level or 'unset (privileged)'}")]


# --- network exposure --------------------------------------------------------------------------


def _netpol_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any]) -> list[Finding]:
    t_spec, l_spec = dig(target, "spec") or {}, dig(live, "spec") or {}
    out: list[Finding] = []
    for direction in ("ingress", "egress"):
        t_rules = t_spec.get(direction) or []
        added = [r for r in l_spec.get(direction) or [] if r not in t_rules]
        if added:
            out.append(_finding("security.network_opened", Severity.HIGH, drift, f"/spec/{direction}",
                                f"{len(added)} {direction} rule(s) more than Git allows"))
    lost = set(t_spec.get("policyTypes") or []) - set(l_spec.get("policyTypes") or [])
    if lost:
        out.append(_finding("security.network_opened", Severity.HIGH, drift, "/spec/policyTypes",
                            f"policy no longer restricts {', '.join(sorted(lost))}"))
    if l_spec.get("podSelector") != t_spec.get("podSelector"):
        out.append(_finding("security.network_opened", Severity.MEDIUM, drift, "/spec/podSelector",
                            "policy now selects different pods"))
    return out


def _service_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any]) -> list[Finding]:
    exposure = {"ClusterIP": 0, "NodePort": 1, "LoadBalancer": 2}
    t_type, l_type = dig(target, "spec", "type") or "ClusterIP", dig(live, "spec", "type") or "ClusterIP"
    out: list[Finding] = []
    if exposure.get(l_type, 0) > exposure.get(t_type, 0):
        out.append(_finding("security.exposure", Severity.HIGH, drift, "/spec/type",
                            f"service exposed as {l_type} (Git: {t_type})"))
    if set(dig(live, "spec", "externalIPs") or []) - set(dig(target, "spec", "externalIPs") or []):
        out.append(_finding("security.exposure", Severity.HIGH, drift, "/spec/externalIPs", "external IPs added"))
    t_ranges = dig(target, "spec", "loadBalancerSourceRanges") or []
    l_ranges = dig(live, "spec", "loadBalancerSourceRanges") or []
    if exposure.get(l_type, 0) >= 2 and (set(l_ranges) - set(t_ranges) or (t_ranges and not l_ranges)):
        # No source ranges at all means any address may connect.
        out.append(_finding("security.exposure", Severity.HIGH, drift, "/spec/loadBalancerSourceRanges",
                            f"load balancer source ranges {t_ranges} -> {l_ranges or 'any address'}"))
    return out


ACCESS_ANNOTATION_WORDS = ("whitelist-source-range", "allowlist-source-range", "auth-url", "auth-type",
                           "auth-secret", "auth-tls")
"""Ingress-controller annotations that restrict who may reach the routes (nginx and alikes)."""


def _ingress_findings(drift: ResourceDrift, target: dict[str, Any], live: dict[str, Any]) -> list[Finding]:
    t_rules = dig(target, "spec", "rules") or []
    added = [r for r in dig(live, "spec", "rules") or [] if r not in t_rules]
    out: list[Finding] = []
    t_ann, l_ann = dig(target, "metadata", "annotations") or {}, dig(live, "metadata", "annotations") or {}
    for key, value in t_ann.items():
        if any(w in key for w in ACCESS_ANNOTATION_WORDS) and l_ann.get(key) != value:
            out.append(_finding("security.exposure", Severity.HIGH, drift,
                                "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1"),
                                f"access restriction {key} {'removed' if key not in l_ann else 'changed'}"))
    if added:
        out.append(_finding("security.exposure", Severity.HIGH, drift, "/spec/rules", "ingress routes added"))
    if dig(target, "spec", "tls") and not dig(live, "spec", "tls"):
        out.append(_finding("security.exposure", Severity.HIGH, drift, "/spec/tls", "TLS removed"))
    return out
