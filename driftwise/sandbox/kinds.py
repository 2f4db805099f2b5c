"""What the sandbox knows about Kubernetes resource types: plural names, scope, short names.

Kinds a scenario uses that are not listed here are still served: their plural is derived and
their scope taken from whether the object carries a namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = field(default=("get", "list"))
    singular: str = ""
    categories: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


_T = ResourceType
KNOWN: tuple[ResourceType, ...] = (
    _T("", "v1", "Namespace", "namespaces", False, ("ns",)),
    _T("", "v1", "Node", "nodes", False, ("no",)),
    _T("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",)),
    _T("", "v1", "Pod", "pods", True, ("po",)),
    _T("", "v1", "Service", "services", True, ("svc",)),
    _T("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _T("", "v1", "Secret", "secrets", True),
    _T("", "v1", "Event", "events", True, ("ev",)),
    _T("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    _T("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _T("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",)),
    _T("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    _T("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",)),
    _T("apps", "v1", "Deployment", "deployments", True, ("deploy",)),
    _T("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",)),
    _T("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",)),
    _T("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",)),
    _T("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",)),
    _T("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",)),
    _T("batch", "v1", "Job", "jobs", True),
    _T("batch", "v1", "CronJob", "cronjobs", True, ("cj",)),
    _T("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",)),
    _T("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    _T("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",)),
    _T("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _T("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _T("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _T("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _T("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
    _T("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    _T("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    _T("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False, ("crd",)),
)


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def pluralize(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and not lower.endswith(("ay", "ey", "oy", "uy")):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def lookup(group: str, version: str, kind: str) -> ResourceType | None:
    for t in KNOWN:
        if t.group == group and t.version == version and t.kind == kind:
            return t
    return None


def is_namespaced(group: str, kind: str, has_namespace: bool) -> bool:
    for t in KNOWN:
        if t.group == group and t.kind == kind:
            return t.namespaced
    return has_namespace


def type_for(group: str, version: str, kind: str, has_namespace: bool) -> ResourceType:
    known = lookup(group, version, kind)
    if known:
        return known
    return ResourceType(group, version, kind, pluralize(kind), is_namespaced(group, kind, has_namespace))
