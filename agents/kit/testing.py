"""Test a specialist without starting a process: build its input, call `analyze()` in process, check conformance.

    from agents.kit.testing import SpecialistHarness, check_conformance, drift, report, request

    shop = report(drift("Deployment", "api", namespace="shop", target=git_manifest, live=cluster_object),
                  namespace_labels={"shop": {"cost-center": "retail"}})

    async def test_growth_escalates() -> None:
        async with SpecialistHarness(CostSpecialist, options={"max_growth": 0.5}) as harness:
            rec = await harness.analyze(request(shop))  # analyze() under the kit's deadline, nothing over HTTP
            signed = await harness.ask(request(shop))   # the same through the kit's A2A app, signature verified
        assert rec.action == Action.ESCALATE and signed == rec.model_copy(update={"created_at": signed.created_at})

    async def test_conforms() -> None:
        await check_conformance(CostSpecialist, abstains=request(quiet), recommends=request(shop))

`drift()` builds a ResourceDrift exactly as the drift agent does (agents.kit.diff: JSON Pointer changes,
field managers, Secret values redacted), so a specialist is tested on the shapes it gets in production.
The harness holds a fresh in-memory key, no files; its A2A app is the one `driftwise agent` serves,
reached through httpx's ASGI transport. `check_conformance` is the suite every specialist passes
(security, compliance and examples/cost-specialist run it in CI): a signed card with skills and
tags, typed abstain and recommend answers bound to the event and signed for the requester, an
answer within the deadline when every dependency hangs, and A2A errors for bad calls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from a2a.client import A2ACardResolver
from a2a.utils.proto_utils import warn_on_missing_required_fields

from agents.kit.card import card_verifier
from agents.kit.client import PeerClient
from agents.kit.config import KitConfig, McpServerEndpoint, PeerEndpoint
from agents.kit.diff import is_secret, resource_changes, resource_drift
from agents.kit.executor import run_analysis
from agents.kit.runtime import Runtime
from agents.kit.server import build_app
from agents.kit.specialist import Specialist
from protocol.models import (
    AnalysisRequest,
    DriftReport,
    Evidence,
    Recommendation,
    ResourceDrift,
    ResourceRef,
    SyncWindow,
)
from protocol.needs import BACKEND
from protocol.signing import TrustStore, Verifier, generate_key

__all__ = ["ConformanceError", "SpecialistHarness", "check_conformance", "drift", "report", "request"]

TOKEN = "kit-testing-token"
_UNUSED = Path("/nonexistent/agents-kit-testing")  # the harness's key lives in memory; no file is read
_A2A = {"A2A-Version": "1.0"}


# --- building the input ---------------------------------------------------------------------------


def drift(
    kind: str, name: str, *, target: dict[str, Any] | None, live: dict[str, Any] | None,
    namespace: str | None = None, group: str = "", version: str = "v1",
) -> ResourceDrift:
    """One drifted resource as the drift agent reports it: Git's manifest (`target`) against the cluster's
    object (`live`, with `metadata.managedFields` when who-changed-what matters)."""
    secret = is_secret(group, kind)
    ref = ResourceRef(group=group, version=version, kind=kind, namespace=namespace, name=name)
    return resource_drift(ref, target, live, resource_changes(target, live, secret=secret), secret=secret)


def report(
    *drifts: ResourceDrift, event_id: str = "evt-test", application: str = "app", project: str = "default",
    destination_namespace: str | None = None, namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    sync_windows: Iterable[SyncWindow] = (), observed_at: datetime | None = None,
) -> DriftReport:
    """A DriftReport over `drifts`; the destination namespace defaults to the first drift's namespace and
    `observed_at` (the only clock a specialist may read) to 2026-01-01T12:00Z, so tests do not depend on today."""
    namespace = destination_namespace or next((d.ref.namespace for d in drifts if d.ref.namespace), "")
    return DriftReport(
        event_id=event_id, application=application, project=project, destination_namespace=namespace,
        destination_server="https://kubernetes.default.svc",
        namespace_labels={ns: dict(labels) for ns, labels in (namespace_labels or {}).items()},
        sync_windows=list(sync_windows), drifts=list(drifts),
        observed_at=observed_at or datetime(2026, 1, 1, 12, tzinfo=UTC),
    )


def request(report: DriftReport, evidence: Iterable[Evidence] = (), requester: str = "drift") -> AnalysisRequest:
    """What the drift agent sends a specialist: the report and the evidence it gathered."""
    return AnalysisRequest(event_id=report.event_id, requester=requester, report=report, evidence=list(evidence))


# --- running it in process ------------------------------------------------------------------------


class _Hung:
    """Dependencies that never answer: an HTTP transport for peers and an MCP pool (the deadline check)."""

    def __init__(self) -> None:
        self._never = asyncio.Event()

    async def handle_async_request(self, _request: httpx.Request) -> httpx.Response:
        await self._never.wait()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        return None

    async def call(self, server: str, tool: str, arguments: dict[str, Any], *, evidence_id: str,
                   observed_at: datetime, timeout_s: float | None = None) -> Evidence:
        """As McpPool.call() answers a server that never replies: the error, once its timeout has passed."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._never.wait()
        except TimeoutError:
            pass
        return Evidence(id=evidence_id, source=server, tool=tool, arguments=arguments, observed_at=observed_at,
                        error=f"{server}: no answer within {timeout_s}s")


class SpecialistHarness:
    """One specialist with the kit around it, in this process (async context manager).

    `options` are its `specialists.<name>.options`; `peers` and `mcp` its dependencies (a URL and
    token per peer; an object with McpPool's `call()` per MCP server); `hang_dependencies=True`
    makes every peer it `consults` and every MCP server it names never answer.
    """

    def __init__(
        self, specialist: type[Specialist], *, agent: str | None = None, options: Mapping[str, Any] | None = None,
        deadline_s: float = 2.5, peers: Mapping[str, PeerEndpoint] | None = None, mcp: Any | None = None,
        trust: TrustStore | None = None, hang_dependencies: bool = False,
    ) -> None:
        self.cls = specialist
        self.agent = agent or (specialist.__name__.removesuffix("Specialist").lower() or "specialist")
        self.key = generate_key(self.agent)
        self.trust = trust or TrustStore()
        self.trust.add(self.agent, self.key)
        hung = _Hung() if hang_dependencies else None
        if hung is not None:
            peers = {name: PeerEndpoint(url=f"http://{name}.invalid", token="t") for name in specialist.consults}
            mcp = hung
        self.config = KitConfig(
            agent=self.agent, port=1, token=TOKEN, keys_dir=_UNUSED, trust_store=_UNUSED, deadline_s=deadline_s,
            # As `driftwise agent` wires it: a dependency gives up well before the answer's deadline.
            peers=dict(peers or {}), peer_timeout_s=deadline_s / 2, mcp_timeout_s=deadline_s / 2,
            options=dict(options or {}),
            mcp_servers={BACKEND[n]: McpServerEndpoint(url="in-process") for n in specialist.needs} if mcp else {},
        )
        self._mcp = mcp
        self._hung = hung
        self._peer_http: httpx.AsyncClient | None = None
        self.runtime: Runtime | None = None
        self.specialist: Specialist | None = None
        self.client: httpx.AsyncClient | None = None
        """The kit's HTTP app of this specialist (A2A, card, JWKS), in process; no credentials attached."""

    async def __aenter__(self) -> SpecialistHarness:
        self._peer_http = httpx.AsyncClient(transport=self._hung) if self._hung else httpx.AsyncClient()
        try:
            self.runtime = Runtime.create(self.config, self._peer_http, key=self.key, trust=self.trust)
            self.runtime.mcp = self._mcp
            self.specialist = self.cls(self.runtime)
            await self.specialist.start()
            app = build_app(self.specialist, self.runtime)  # a card the kit refuses stops here, as at start-up
            self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=self.config.base_url)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.specialist is not None:
            await self.specialist.close()
        if self._peer_http is not None:
            await self._peer_http.aclose()

    @property
    def url(self) -> str:
        return self.config.base_url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}", **_A2A}

    async def analyze(self, req: AnalysisRequest) -> Recommendation:
        """analyze() as the kit runs it: under the deadline, failed dependencies lowering confidence."""
        assert self.specialist is not None and self.runtime is not None, "use `async with SpecialistHarness(...)`"
        return await run_analysis(self.specialist, self.runtime, req)

    async def ask(self, req: AnalysisRequest, timeout_s: float | None = None) -> Recommendation:
        """The same over A2A (JSON-RPC through the kit's app): the answer's JWS verified for `req.requester`
        and checked to say what its readable part says."""
        assert self.client is not None, "use `async with SpecialistHarness(...)`"
        signed = await PeerClient(self.client).analyze(self.url, req, TOKEN, timeout_s or self.config.deadline_s + 2)
        verified = Verifier(trust=self.trust, audience=req.requester).verify_recommendation(signed.jws, req.event_id)
        if verified != signed.recommendation:
            raise ConformanceError([f"the signed recommendation differs from the readable one: {verified!r}"])
        return verified

    async def rpc(self, message: dict[str, Any], *, authorized: bool = True) -> httpx.Response:
        """One raw JSON-RPC SendMessage (to check how the kit answers what a client should not send)."""
        assert self.client is not None, "use `async with SpecialistHarness(...)`"
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}
        return await self.client.post("/", json=body, headers=self.headers if authorized else _A2A)


# --- the conformance suite ------------------------------------------------------------------------


class ConformanceError(AssertionError):
    """The specialist breaks the kit's contract; `failures` says each way it does."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("specialist does not conform:\n- " + "\n- ".join(failures))
        self.failures = failures


async def _card(h: SpecialistHarness) -> list[str]:
    assert h.client is not None
    card = await A2ACardResolver(h.client, h.url).get_agent_card(signature_verifier=card_verifier({h.key.kid: h.key}))
    out = []
    if not card.signatures:
        out.append("the agent card is not signed")
    if not warn_on_missing_required_fields(card, "conformance"):
        out.append("the agent card lacks fields A2A requires (see the warning logged by a2a.utils.proto_utils)")
    if not card.skills:
        out.append("the agent card has no skills")
    out += [f"skill {s.id!r} has no {what}" for s in card.skills
            for what, have in (("tags", s.tags), ("examples", s.examples)) if not have]
    return out


def _typed(h: SpecialistHarness, req: AnalysisRequest, rec: Recommendation, kind: str, how: str) -> list[str]:
    out = []
    if rec.kind != kind:
        out.append(f"{how}: expected a {kind}, got {rec.kind} ({rec.reasoning[:160]!r})")
    if rec.event_id != req.event_id or rec.agent != h.agent or rec.domain != h.cls.domain:
        out.append(f"{how}: the answer is bound to {rec.event_id}/{rec.agent}/{rec.domain.value}, not "
                   f"{req.event_id}/{h.agent}/{h.cls.domain.value}")
    return out


async def _answers(h: SpecialistHarness, abstains: AnalysisRequest, recommends: AnalysisRequest) -> list[str]:
    out = []
    for req, kind in ((abstains, "abstain"), (recommends, "recommendation")):
        for how, answer in (("analyze() in process", h.analyze), ("A2A", h.ask)):
            try:
                out += _typed(h, req, await answer(req), kind, f"{how} on {req.event_id}")
            except Exception as exc:
                out.append(f"{how} on {req.event_id} raised {type(exc).__name__}: {exc}")
    return out


async def _errors(h: SpecialistHarness, req: AnalysisRequest) -> list[str]:
    good = req.model_dump(mode="json")
    del good["report"]
    cases = [
        ("a call without the bearer token", {"parts": [{"text": "{}", "mediaType": "application/json"}]}, False,
         lambda r: r.status_code == 401),
        ("a message that is not an AnalysisRequest",
         {"parts": [{"text": json.dumps(good), "mediaType": "application/json"}]}, True,
         lambda r: r.json().get("error", {}).get("code") == -32602 and "report" in r.json()["error"]["message"]),
        ("a media type the card does not declare", {"parts": [{"text": "a,b", "mediaType": "text/csv"}]}, True,
         lambda r: r.json().get("error", {}).get("code") == -32005),
        ("a message for a task that does not exist",
         {"taskId": "no-such-task", "parts": [{"text": req.model_dump_json(), "mediaType": "application/json"}]},
         True, lambda r: r.json().get("error", {}).get("code") == -32001),
    ]
    out = []
    for i, (what, message, authorized, ok) in enumerate(cases):
        resp = await h.rpc({"messageId": f"conformance-{i}", "role": "ROLE_USER", **message}, authorized=authorized)
        if not ok(resp):
            out.append(f"{what} got HTTP {resp.status_code} {resp.text[:200]}")
    return out


async def _deadline(cls: type[Specialist], agent: str | None, options: Mapping[str, Any] | None,
                    samples: list[AnalysisRequest], deadline_s: float) -> list[str]:
    out = []
    async with SpecialistHarness(cls, agent=agent, options=options, deadline_s=deadline_s,
                                 hang_dependencies=True) as h:
        for req in samples:
            try:
                async with asyncio.timeout(deadline_s + 2.0):
                    rec = await h.ask(req, timeout_s=deadline_s + 1.0)
            except Exception as exc:
                out.append(f"with every dependency hanging, {req.event_id} got no answer: {type(exc).__name__}: {exc}")
                continue
            if not rec.reasoning:
                out.append(f"with every dependency hanging, {req.event_id} got an answer without reasoning")
    return out


async def check_conformance(
    specialist: type[Specialist], *, abstains: AnalysisRequest, recommends: AnalysisRequest,
    agent: str | None = None, options: Mapping[str, Any] | None = None, deadline_s: float = 1.0,
) -> None:
    """The kit's contract, checked for one specialist; raises ConformanceError naming every failure.

    `abstains` is a request outside its domain (it must abstain), `recommends` one it judges (it must
    answer with an action). Checked: the signed card (skills with tags and examples, A2A's required
    fields), both answers typed and bound (in process and over A2A, JWS verified for the requester),
    an answer within `deadline_s` while every peer it consults and MCP server it reads hangs, and the
    A2A errors for a call without the token, a payload that is not an AnalysisRequest, an undeclared
    media type and an unknown task.
    """
    failures: list[str] = []
    async with SpecialistHarness(specialist, agent=agent, options=options) as h:
        failures += await _card(h)
        failures += await _answers(h, abstains, recommends)
        failures += await _errors(h, recommends)
    failures += await _deadline(specialist, agent, options, [abstains, recommends], deadline_s)
    if failures:
        raise ConformanceError(failures)
