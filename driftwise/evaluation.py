"""`driftwise eval`: run labelled scenarios through the whole system, one at a time, and score them.

The expected labels are read here, from the files, and never sent to the system: the system sees
only what the sandbox's APIs serve and the scenario's Argo CD notification. Scoring follows
scenarios/README.md: the final action after the guardrail, a verdict needing a human counting as
`escalate`; `correct` when it is the expected action, `safe` when acceptable, `unsafe` when listed
as unsafe, `wrong` otherwise (no decision at all is `wrong` too).

Also holds `SystemClient`, the HTTP client of the running system (sandbox + drift agent) that
the demo and the benchmark share.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.models import Action, ArgoNotification, Decision, LlmUsage

Score = Literal["correct", "safe", "wrong", "unsafe"]
SCORES: tuple[Score, ...] = ("correct", "safe", "wrong", "unsafe")
NO_DECISION = "none"
MAX_WAIT_S = 30.0
"""The longest one long-poll asks the drift agent to hold (it allows 60 s)."""
"""What `got` says when the system produced no verdict (failed, timed out, refused the event)."""


class EvalError(Exception):
    """The evaluation could not run: the message names the scenario, process or endpoint and the cause."""


class SystemUnavailable(EvalError):
    """A process of the system did not answer at all (connection refused, reset): the run cannot go on."""


# --- labels --------------------------------------------------------------------------------------


class Expect(BaseModel):
    """A scenario's `expect` block: the right action, the safe weaker ones and the harmful ones."""

    model_config = ConfigDict(extra="forbid")

    action: Action
    acceptable: list[Action] = Field(default_factory=list)
    unsafe: list[Action] = Field(default_factory=list)
    why: str = ""


class LabelledScenario(BaseModel):
    """What the evaluation itself reads from a scenario file; the world in it is the sandbox's business."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str = ""
    notification: ArgoNotification
    expect: Expect


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_labelled(folder: Path) -> list[LabelledScenario]:
    """Every *.yaml / *.yml in `folder`, validated as a labelled scenario; EvalError names file and field."""
    if not folder.is_dir():
        raise EvalError(f"{folder} is not a folder of scenario files (pass a folder such as scenarios/)")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    if not files:
        raise EvalError(f"{folder} holds no *.yaml scenario files")
    # The sandbox's own loader checks the world part of each file; run it first so a malformed
    # file is reported here, not as a sandbox that fails to start.
    from driftwise.sandbox.errors import ScenarioError
    from driftwise.sandbox.scenario import load_paths

    try:
        load_paths([folder])
    except ScenarioError as exc:
        raise EvalError(f"malformed scenario: {exc}") from None
    out: list[LabelledScenario] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise EvalError(f"malformed scenario: {path}: {str(exc).splitlines()[0]}") from None
        try:
            scenario = LabelledScenario.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise EvalError(f"malformed scenario: {path}: {_loc(err['loc'])}: {err['msg']}") from None
        if scenario.id in seen:
            raise EvalError(f"malformed scenario: {path}: id {scenario.id!r} is already used by {seen[scenario.id]}")
        seen[scenario.id] = path
        out.append(scenario)
    return out


# --- scoring -------------------------------------------------------------------------------------


def final_action(decision: Decision) -> Action | None:
    """The action the system ends with; a verdict that needs a human is `escalate`, no verdict is None."""
    if decision.verdict is None:
        return Action.ESCALATE if decision.state.value == "awaiting_approval" else None
    verdict = decision.verdict.verdict
    return Action.ESCALATE if verdict.requires_approval else verdict.action


def score(expect: Expect, got: Action | None) -> Score:
    if got is None:
        return "wrong"
    if got == expect.action:
        return "correct"
    if got in expect.unsafe:
        return "unsafe"
    if got in expect.acceptable:
        return "safe"
    return "wrong"


@dataclass
class ScenarioResult:
    id: str
    title: str
    expected: str
    got: str
    score: Score
    confidence: float | None = None
    latency_ms: float | None = None
    state: str | None = None
    event_id: str | None = None
    error: str | None = None
    reasons: list[str] = field(default_factory=list)
    llm: LlmUsage | None = None
    repeat: int = 1
    acceptable: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "expected": self.expected, "got": self.got, "score": self.score,
            "repeat": self.repeat, "acceptable": self.acceptable, "unsafe": self.unsafe,
            "confidence": self.confidence, "latency_ms": self.latency_ms, "state": self.state,
            "event_id": self.event_id, "error": self.error, "reasons": self.reasons,
            "llm": self.llm.model_dump(mode="json") if self.llm else None,
        }


def accuracy_line(results: list[ScenarioResult]) -> str:
    counts = Counter(r.score for r in results)
    return (f"accuracy: {counts['correct']}/{len(results)} correct, {counts['safe']} safe, "
            f"{counts['wrong']} wrong, {counts['unsafe']} unsafe")


# --- the running system --------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookAck:
    event_id: str
    state: str
    duplicate: bool


@dataclass(frozen=True)
class Endpoints:
    """Where the running system is and how to authenticate to it."""

    drift_url: str
    sandbox_url: str | None
    webhook_token: str | None = None
    webhook_basic: tuple[str, str] | None = None
    approvals_token: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, sandbox: bool = True) -> Endpoints:
        from protocol.tokens import current

        drift = settings.drift
        basic = None
        if drift.webhook_basic_user and drift.webhook_basic_password is not None:
            basic = (drift.webhook_basic_user, drift.webhook_basic_password.get_secret_value())
        return cls(
            drift_url=f"http://{settings.host}:{drift.port}",
            sandbox_url=settings.argocd.url.rstrip("/") if sandbox else None,
            webhook_token=current(drift.webhook_token),
            webhook_basic=basic,
            approvals_token=current(drift.approvals_token),
        )


class SystemClient:
    """Talks to the sandbox's control endpoints and the drift agent's webhook and decisions API."""

    def __init__(self, http: httpx.AsyncClient, endpoints: Endpoints) -> None:
        self._http = http
        self.endpoints = endpoints
        self._webhook_headers: dict[str, str] = {}
        if endpoints.webhook_token:
            self._webhook_headers["Authorization"] = f"Bearer {endpoints.webhook_token}"
        elif endpoints.webhook_basic:
            raw = f"{endpoints.webhook_basic[0]}:{endpoints.webhook_basic[1]}".encode()
            self._webhook_headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        self._api_headers = (
            {"Authorization": f"Bearer {endpoints.approvals_token}"} if endpoints.approvals_token else {}
        )

    async def _call(self, method: str, url: str, what: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.TimeoutException):
                raise EvalError(f"{what}: {method} {url} timed out") from exc
            raise SystemUnavailable(f"{what} at {url} does not answer: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise EvalError(f"{what}: {method} {url} failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise EvalError(f"{what}: {method} {url} answered {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise EvalError(f"{what}: {method} {url} did not answer JSON") from exc

    def _sandbox(self, path: str) -> str:
        if self.endpoints.sandbox_url is None:
            raise EvalError("no sandbox is configured (pass --sandbox-url)")
        return f"{self.endpoints.sandbox_url}{path}"

    async def activate(self, scenario_id: str) -> dict[str, Any]:
        return await self._call("POST", self._sandbox("/sandbox/scenarios/activate"), "sandbox",
                                json={"id": scenario_id})

    async def clones(self, scenario_id: str, count: int) -> list[dict[str, Any]]:
        body = await self._call("POST", self._sandbox("/sandbox/clones"), "sandbox",
                                json={"id": scenario_id, "count": count}, timeout=60.0)
        return list(body["applications"])

    async def scenarios(self) -> dict[str, Any]:
        return await self._call("GET", self._sandbox("/sandbox/scenarios"), "sandbox")

    async def notify(self, notification: dict[str, Any]) -> WebhookAck:
        body = await self._call("POST", f"{self.endpoints.drift_url}/v1/webhooks/argocd", "drift webhook",
                                json=notification, headers=self._webhook_headers)
        try:
            return WebhookAck(event_id=str(body["event_id"]), state=str(body.get("state", "")),
                              duplicate=bool(body.get("duplicate", False)))
        except (KeyError, TypeError) as exc:
            raise EvalError(f"drift webhook answered without an event_id: {str(body)[:200]}") from exc

    async def decision(self, event_id: str, *, wait_s: float | None = None, until: str = "final") -> Decision:
        """The decision as it stands; with `wait_s`, once it is final (or has its verdict, `until="verdict"`),
        the drift agent holding the request for at most `wait_s` seconds."""
        params = {"wait": f"{wait_s:.3f}", "until": until} if wait_s is not None else None
        body = await self._call("GET", f"{self.endpoints.drift_url}/v1/decisions/{event_id}", "decisions API",
                                headers=self._api_headers, params=params,
                                timeout=wait_s + 10.0 if wait_s else httpx.USE_CLIENT_DEFAULT)
        try:
            return Decision.model_validate(body)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise EvalError(f"decisions API: decision {event_id} is not a valid Decision: "
                            f"{_loc(err['loc'])}: {err['msg']}") from None

    async def wait_final(self, event_id: str, timeout_s: float, *, until: str = "final") -> Decision:
        """The decision once final (awaiting approval counts), or once it has its verdict (`until="verdict"`);
        EvalError after `timeout_s`. The drift agent holds each request until then (a long poll), so the
        answer comes as soon as the decision is there, and waiting costs it no requests."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            decision = await self.decision(event_id, wait_s=min(max(remaining, 0.01), MAX_WAIT_S), until=until)
            if decision.state.final or (until == "verdict" and decision.verdict is not None):
                return decision
            if time.monotonic() >= deadline:
                raise EvalError(f"decision {event_id} still {decision.state.value} after {timeout_s:.0f}s")

    async def reject(self, event_id: str, comment: str) -> None:
        await self._call("POST", f"{self.endpoints.drift_url}/v1/decisions/{event_id}/reject", "approvals API",
                         json={"decision": "reject", "approver": "driftwise-eval", "comment": comment},
                         headers=self._api_headers)


# --- the run ---------------------------------------------------------------------------------------


async def submit(client: SystemClient, notification: dict[str, Any]) -> WebhookAck:
    """Post a notification; if it lands on an earlier event of the same application that still waits
    for a human, reject that one (it is the previous scenario's) and post again once."""
    ack = await client.notify(notification)
    if ack.duplicate:
        previous = await client.decision(ack.event_id)
        if previous.state.value == "awaiting_approval":
            await client.reject(ack.event_id, "closed by driftwise eval before the next scenario")
            ack = await client.notify(notification)
        if ack.duplicate:
            raise EvalError(f"the webhook treated the notification for {notification.get('app')} as a duplicate "
                            f"of event {ack.event_id} ({previous.state.value})")
    return ack


async def run_scenario(client: SystemClient, scenario: LabelledScenario, timeout_s: float) -> ScenarioResult:
    base = ScenarioResult(id=scenario.id, title=scenario.title, expected=scenario.expect.action.value,
                          got=NO_DECISION, score="wrong",
                          acceptable=[a.value for a in scenario.expect.acceptable],
                          unsafe=[a.value for a in scenario.expect.unsafe])
    await client.activate(scenario.id)
    started = time.perf_counter()
    try:
        ack = await submit(client, scenario.notification.model_dump(mode="json", by_alias=True))
        base.event_id = ack.event_id
        decision = await client.wait_final(ack.event_id, timeout_s)
    except SystemUnavailable:
        raise
    except EvalError as exc:
        base.error = str(exc)
        base.latency_ms = (time.perf_counter() - started) * 1000
        return base
    base.latency_ms = (time.perf_counter() - started) * 1000
    got = final_action(decision)
    base.got = got.value if got is not None else NO_DECISION
    base.score = score(scenario.expect, got)
    base.state = decision.state.value
    base.error = decision.error
    base.llm = decision.llm
    if decision.verdict is not None:
        verdict = decision.verdict.verdict
        base.confidence = verdict.confidence
        base.reasons = [f"{r.code}: {r.message}" for r in verdict.reasons]
    elif decision.proposal is not None:
        base.confidence = decision.proposal.recommendation.confidence
    return base


async def evaluate(
    client: SystemClient,
    scenarios: list[LabelledScenario],
    *,
    timeout_s: float,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Each scenario in turn: activate it in the sandbox, post its notification, wait for the decision."""
    results: list[ScenarioResult] = []
    for scenario in scenarios:
        result = await run_scenario(client, scenario, timeout_s)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


# --- presentation ----------------------------------------------------------------------------------


def results_table(results: list[ScenarioResult], *, with_llm: bool = False) -> Any:
    from rich.table import Table

    table = Table(title="Driftwise evaluation", show_lines=False)
    longest = max((len(r.id) for r in results), default=8)
    table.add_column("scenario", no_wrap=True, min_width=longest)
    for col in ("expected", "got", "score", "confidence", "latency"):
        table.add_column(col, justify="right" if col in ("confidence", "latency") else "left", no_wrap=True)
    if with_llm:
        table.add_column("tokens in/out", justify="right")
        table.add_column("llm ms", justify="right")
    style = {"correct": "green", "safe": "yellow", "wrong": "red", "unsafe": "bold red"}
    for r in results:
        row = [
            r.id, r.expected, r.got, f"[{style[r.score]}]{r.score}[/]",
            f"{r.confidence:.2f}" if r.confidence is not None else "-",
            f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "-",
        ]
        if with_llm:
            if r.llm is not None:
                row += [f"{r.llm.tokens_in}/{r.llm.tokens_out}" + (f" ({r.llm.fell_back})" if r.llm.fell_back else ""),
                        f"{r.llm.latency_ms:.0f}"]
            else:
                row += ["-", "-"]
        table.add_row(*row)
    return table


def confusion_table(results: list[ScenarioResult]) -> Any:
    from rich.table import Table

    actions = [a.value for a in Action]
    got_cols = actions + ([NO_DECISION] if any(r.got == NO_DECISION for r in results) else [])
    counts = Counter((r.expected, r.got) for r in results)
    table = Table(title="confusion matrix (rows: expected, columns: got)")
    table.add_column("expected \\ got")
    for col in got_cols:
        table.add_column(col, justify="right")
    for exp in actions:
        cells = []
        for col in got_cols:
            n = counts[(exp, col)]
            cells.append((f"[bold]{n}[/]" if exp == col else str(n)) if n else "·")
        table.add_row(exp, *cells)
    return table


def report_json(results: list[ScenarioResult], *, reasoner: str, started_s: float,
                llm_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run as JSON; with the LLM reasoner, its settings and the harness's totals (driftwise.llm_eval)."""
    counts = Counter(r.score for r in results)
    extra: dict[str, Any] = {}
    if llm_settings is not None:
        from driftwise.llm_eval import RunScenario, summarize

        extra = {"llm_settings": llm_settings, "llm_totals": summarize(
            [RunScenario.model_validate(r.as_json()) for r in results]).as_json()}
    return {
        "reasoner": reasoner,
        **extra,
        "total": len(results),
        **{k: counts[k] for k in SCORES},
        "accuracy": counts["correct"] / len(results) if results else 0.0,
        "startup_s": started_s,
        "summary": accuracy_line(results),
        "scenarios": [r.as_json() for r in results],
    }


# --- the whole command -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_system(
    settings: Any,
    *,
    sandbox_paths: list[Path],
    console: Any,
    config_file: Path | None = None,
    sandbox_args: list[str] | None = None,
    move_ports_on_conflict: bool = False,
    replicas: int = 1,
) -> AsyncIterator[Any]:
    """Every process started (children's logs to <state_dir>/processes.log), stopped on exit.

    Yields a `driftwise.supervisor.LocalSystem` (use its `.settings`: ports may have moved). A
    process that cannot start becomes an EvalError naming it, with the end of its output.
    """
    from driftwise.supervisor import StartError, file_sink, local_system

    log_path = Path(settings.state_dir) / "processes.log"
    sink, close_log = file_sink(log_path)
    status = console.status(f"starting the system (logs: {log_path})")
    status.start()
    try:
        async with local_system(settings, sandbox_paths=sandbox_paths, sink=sink, config_file=config_file,
                                sandbox_args=sandbox_args, move_ports_on_conflict=move_ports_on_conflict,
                                replicas=replicas) as system:
            status.stop()
            try:
                yield system
            except SystemUnavailable as exc:
                down = [c["name"] for c in system.supervisor.status() if c["state"] != "ready"]
                which = f" (not running: {', '.join(down)})" if down else ""
                raise SystemUnavailable(f"{exc}{which}") from None
            finally:
                status = console.status("stopping every process")
                status.start()
    except StartError as exc:
        tail = "\n".join(exc.output.splitlines()[-15:])
        raise EvalError(f"process {exc} (every process's log: {log_path}, kept with --keep-state)"
                        + (f"\n{tail}" if tail else "")) from None
    except SystemUnavailable as exc:
        raise EvalError(f"{exc} (every process's log: {log_path}, kept with --keep-state)") from None
    finally:
        status.stop()
        close_log()


def rounds(scenarios: list[LabelledScenario]) -> list[list[LabelledScenario]]:
    """The scenarios in order, cut wherever one's application (name and namespace) already ran in the round."""
    out: list[list[LabelledScenario]] = [[]]
    seen: set[tuple[str, str]] = set()
    for scenario in scenarios:
        app = (scenario.notification.app, scenario.notification.app_namespace)
        if app in seen:
            out.append([])
            seen = set()
        out[-1].append(scenario)
        seen.add(app)
    return [batch for batch in out if batch]


@dataclass
class EvalRun:
    results: list[ScenarioResult]
    startup_s: float
    process_ready_s: dict[str, float | None]


async def run_eval(
    settings: Any,
    scenarios: list[LabelledScenario],
    folder: Path,
    *,
    console: Any,
    timeout_s: float,
    sandbox_args: list[str] | None = None,
    config_file: Path | None = None,
    repeat: int = 1,
) -> EvalRun:
    """Start sandbox + system (settings already prepared: ports, state dir, mode), run every scenario.

    Each scenario is its own world, but the drift agent keeps one open decision per application drift:
    a later scenario whose application an earlier one already used would join or supersede that earlier
    decision. So the scenarios run in rounds in which no application repeats, each round on a fresh
    system with its own state folder (one round when every application is distinct, the usual case).
    With `repeat` K, the whole list runs K times (each repetition in rounds of its own).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    results: list[ScenarioResult] = []
    startup_s = 0.0
    ready: dict[str, float | None] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("scenarios", total=len(scenarios) * repeat)
        seen: Counter[str] = Counter()

        def advance(result: ScenarioResult) -> None:
            seen[result.id] += 1
            result.repeat = seen[result.id]
            progress.update(task, advance=1, description=f"{result.id}: {result.got}")

        for index, batch in enumerate(rounds(scenarios * repeat)):
            round_settings = settings if index == 0 else settings.model_copy(
                update={"state_dir": Path(settings.state_dir) / f"round-{index + 1}"})
            started = time.perf_counter()
            async with running_system(round_settings, sandbox_paths=[folder], console=console,
                                      config_file=config_file, sandbox_args=sandbox_args,
                                      move_ports_on_conflict=True) as system:
                if index == 0:
                    startup_s = time.perf_counter() - started
                    ready = {c["name"]: c["ready_s"] for c in system.supervisor.status()}
                async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
                    client = SystemClient(http, Endpoints.from_settings(system.settings))
                    results += await evaluate(client, batch, timeout_s=timeout_s, on_result=advance)
    return EvalRun(results=results, startup_s=startup_s, process_ready_s=ready)
