"""CustomResourceDefinitions as the API server serves them: the CRDs, their kinds in discovery, /openapi/v3."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from driftwise.sandbox.errors import ScenarioError
from driftwise.sandbox.scenario import load_file
from tests.support.sandbox_clients import CRD_SCENARIOS, KUBE, Clients

ISTIO = "c01-istio-authorizationpolicy-opened"
KYVERNO = "c02-kyverno-clusterpolicy-audit"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


async def test_crds_are_listed_and_read_by_name(sb: Clients) -> None:
    await sb.activate(ISTIO)
    listed = (await sb.kubernetes.get(CRDS, headers=KUBE)).json()
    assert listed["kind"] == "CustomResourceDefinitionList" and listed["apiVersion"] == "apiextensions.k8s.io/v1"
    assert [c["metadata"]["name"] for c in listed["items"]] == ["authorizationpolicies.security.istio.io"]
    one = await sb.kubernetes.get(f"{CRDS}/authorizationpolicies.security.istio.io", headers=KUBE)
    assert one.status_code == 200 and one.json()["kind"] == "CustomResourceDefinition"
    schema = one.json()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["properties"]["action"]["enum"] == ["ALLOW", "DENY", "AUDIT", "CUSTOM"]
    missing = await sb.kubernetes.get(f"{CRDS}/widgets.acme.example.com", headers=KUBE)
    assert missing.status_code == 404
    assert missing.json()["message"] == (
        'customresourcedefinitions.apiextensions.k8s.io "widgets.acme.example.com" not found')


async def test_custom_kinds_in_discovery_as_their_crd_names_them(sb: Clients) -> None:
    await sb.activate(ISTIO)
    groups = {g["name"]: g for g in (await sb.kubernetes.get("/apis", headers=KUBE)).json()["groups"]}
    assert [v["version"] for v in groups["security.istio.io"]["versions"]] == ["v1", "v1beta1"]
    for version in ("v1", "v1beta1"):
        resources = (await sb.kubernetes.get(f"/apis/security.istio.io/{version}", headers=KUBE)).json()
        assert resources["groupVersion"] == f"security.istio.io/{version}"
        assert resources["resources"] == [{
            "name": "authorizationpolicies", "singularName": "authorizationpolicy", "namespaced": True,
            "kind": "AuthorizationPolicy", "verbs": ["get", "list"], "shortNames": ["ap"],
            "categories": ["istio-io", "security-istio-io"],
        }]
    items = (await sb.kubernetes.get("/apis/security.istio.io/v1/namespaces/payments/authorizationpolicies",
                                     headers=KUBE)).json()
    assert items["kind"] == "AuthorizationPolicyList" and items["items"][0]["spec"]["rules"][0].get("from") is None

    await sb.activate(KYVERNO)  # a cluster-scoped kind: no namespaced path
    resources = (await sb.kubernetes.get("/apis/kyverno.io/v1", headers=KUBE)).json()["resources"]
    assert [(r["name"], r["namespaced"], r["shortNames"]) for r in resources] == [("clusterpolicies", False, ["cpol"])]
    cpol = await sb.kubernetes.get("/apis/kyverno.io/v1/clusterpolicies/disallow-privileged", headers=KUBE)
    assert cpol.json()["spec"]["validationFailureAction"] == "Audit"
    scoped = await sb.kubernetes.get("/apis/kyverno.io/v1/namespaces/kyverno/clusterpolicies", headers=KUBE)
    assert scoped.status_code == 404


async def test_openapi_v3_discovery_and_documents_as_the_api_server_publishes_them(sb: Clients) -> None:
    await sb.activate(ISTIO)
    discovery = (await sb.kubernetes.get("/openapi/v3", headers=KUBE)).json()
    crd_paths = {"apis/security.istio.io/v1", "apis/security.istio.io/v1beta1"}
    # the CRD's group versions beside the built-in ones (tests/sandbox/test_fidelity_api.py checks those)
    assert set(discovery) == {"paths"} and crd_paths | {"api/v1", "apis/apps/v1"} <= set(discovery["paths"])
    assert not {p for p in discovery["paths"] if "istio" in p} - crd_paths
    hashes = set()
    for key, entry in ((k, v) for k, v in discovery["paths"].items() if k in crd_paths):
        url = entry["serverRelativeURL"]
        assert re.fullmatch(rf"/openapi/v3/{key}\?hash=[0-9A-F]{{128}}", url), url
        response = await sb.kubernetes.get(url, headers=KUBE)
        assert response.status_code == 200 and response.headers["etag"] == f'"{url.split("hash=")[1]}"'
        hashes.add(url)
        doc = response.json()
        version = key.rsplit("/", 1)[1]
        assert doc["openapi"].startswith("3.") and set(doc["components"]["schemas"]) >= {
            f"io.istio.security.{version}.AuthorizationPolicy", f"io.istio.security.{version}.AuthorizationPolicyList",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
        kind = doc["components"]["schemas"][f"io.istio.security.{version}.AuthorizationPolicy"]
        assert kind["x-kubernetes-group-version-kind"] == [
            {"group": "security.istio.io", "kind": "AuthorizationPolicy", "version": version}]
        assert kind["properties"]["metadata"]["allOf"] == [
            {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
        assert {"apiVersion", "kind", "spec", "status"} <= set(kind["properties"])
        assert "Valid Options: ALLOW, DENY" in kind["properties"]["spec"]["properties"]["action"]["description"]
        for ref in re.findall(r'"#/components/schemas/([^"]+)"', response.text):  # every reference resolves
            assert ref in doc["components"]["schemas"], ref
        assert set(doc["paths"]) == {
            f"/apis/security.istio.io/{version}/namespaces/{{namespace}}/authorizationpolicies",
            f"/apis/security.istio.io/{version}/namespaces/{{namespace}}/authorizationpolicies/{{name}}",
            f"/apis/security.istio.io/{version}/authorizationpolicies"}
    assert len(hashes) == 2  # the hash is the document's: two versions, two documents
    absent = await sb.kubernetes.get("/openapi/v3/apis/acme.example.com/v1", headers=KUBE)
    assert absent.status_code == 404 and absent.json()["kind"] == "Status"


async def test_clones_share_the_crds_and_keep_their_own_custom_resources(sb: Clients) -> None:
    r = await sb.argocd.post("/sandbox/clones", json={"id": ISTIO, "count": 2})
    assert r.status_code == 200, r.text
    listed = (await sb.kubernetes.get(CRDS, headers=KUBE)).json()["items"]
    assert [c["metadata"]["name"] for c in listed] == ["authorizationpolicies.security.istio.io"]
    items = (await sb.kubernetes.get("/apis/security.istio.io/v1/authorizationpolicies", headers=KUBE)).json()
    assert sorted(i["metadata"]["namespace"] for i in items["items"]) == [
        "payments", "payments-c0001", "payments-c0002"]


async def test_a_world_without_crds_publishes_only_the_built_in_documents(sb: Clients) -> None:
    await sb.activate("v01-payments-emergency-scale-up")
    paths = (await sb.kubernetes.get("/openapi/v3", headers=KUBE)).json()["paths"]
    assert {"api/v1", "apis/apps/v1"} <= set(paths)
    assert not [p for p in paths if p.removeprefix("apis/").split("/")[0].endswith(("istio.io", "kyverno.io"))]


@pytest.mark.parametrize(("mutate", "what"), [
    (lambda crd: crd["metadata"].update(name="policies.security.istio.io"),
     "metadata.name must be 'authorizationpolicies.security.istio.io'"),
    (lambda crd: crd["spec"].pop("group"), "spec.group: Field required"),
    (lambda crd: crd["spec"].update(scope="Namespace"), "spec.scope: Input should be 'Namespaced' or 'Cluster'"),
    (lambda crd: [v.update(storage=True) for v in crd["spec"]["versions"]], "exactly one of spec.versions"),
])
def test_a_malformed_crd_fails_the_load_naming_it(tmp_path: Path, mutate, what: str) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((CRD_SCENARIOS / f"{ISTIO}.yaml").read_text())
    crd = next(o for o in data["kubernetes"]["objects"] if o["kind"] == "CustomResourceDefinition")
    mutate(crd)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as err:
        load_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: kubernetes.objects: ") and "objects[1]: CustomResourceDefinition" in message
    assert what in message
