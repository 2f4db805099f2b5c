"""The LLM evaluation harness: what a model gets right alone, what the two keys make of it, and what it costs.

`driftwise eval DIR --reasoner llm [--repeat K] --json F` runs each scenario K times through the whole
system; each result keeps the label, the rules' action, the model's own action (what it would have
decided alone, from `Decision.llm`), the final action after the guardrail, the confidence, the prompt
and completion tokens the endpoint reported, the latency and, when the rules decided instead, why.
`summarize` computes the totals; `driftwise eval-report F...` turns one or more runs into one markdown
table per model. `preflight` warns before a run whose settings make every decision fall back.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

REPAIR_CALLS = 2
"""A decision may send the call and one repair: the deadline must leave room for both."""


class HarnessError(Exception):
    """A run file that cannot be read as a harness run: the message names the file and the field."""


class RunScenario(BaseModel):
    """One scenario's result as `eval --json` writes it (the fields the harness reads)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    expected: str
    got: str
    score: str
    repeat: int = 1
    confidence: float | None = None
    latency_ms: float | None = None
    acceptable: list[str] = Field(default_factory=list)
    unsafe: list[str] = Field(default_factory=list)
    llm: dict[str, Any] | None = None


class RunFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reasoner: str
    llm_settings: dict[str, Any] = Field(default_factory=dict)
    scenarios: list[RunScenario]


def _score(expected: str, acceptable: list[str], unsafe: list[str], got: str | None) -> str:
    if got is None:
        return "wrong"
    if got == expected:
        return "correct"
    if got in unsafe:
        return "unsafe"
    return "safe" if got in acceptable else "wrong"


@dataclass(frozen=True)
class Totals:
    decisions: int
    final_correct: int
    final_unsafe: int
    model_answered: int
    model_correct: int
    model_unsafe: int
    agree_with_rules: int
    failures: dict[str, int]
    prompt_tokens_median: float
    latency_ms_median: float

    def as_json(self) -> dict[str, Any]:
        n = self.decisions or 1
        return {
            "decisions": self.decisions,
            "final_accuracy": self.final_correct / n, "final_unsafe": self.final_unsafe,
            "model_alone_accuracy": self.model_correct / n, "model_alone_unsafe": self.model_unsafe,
            "model_answered": self.model_answered,
            "agreement_with_rules": self.agree_with_rules / (self.model_answered or 1),
            "failures": self.failures,
            "prompt_tokens_median": self.prompt_tokens_median, "latency_ms_median": self.latency_ms_median,
        }


def model_score(s: RunScenario) -> str:
    """The model's own action scored against the label; no answer (it failed) is `wrong`."""
    action = (s.llm or {}).get("model_action")
    return _score(s.expected, s.acceptable, s.unsafe, action)


def summarize(scenarios: list[RunScenario]) -> Totals:
    llm = [s.llm or {} for s in scenarios]
    answered = [(s, u) for s, u in zip(scenarios, llm, strict=True) if u.get("model_action")]
    tokens = [u.get("tokens_in", 0) for u in llm if u.get("tokens_in")]
    latencies = [s.latency_ms for s in scenarios if s.latency_ms is not None]
    return Totals(
        decisions=len(scenarios),
        final_correct=sum(s.score == "correct" for s in scenarios),
        final_unsafe=sum(s.score == "unsafe" for s in scenarios),
        model_answered=len(answered),
        model_correct=sum(model_score(s) == "correct" for s in scenarios),
        model_unsafe=sum(model_score(s) == "unsafe" for s in scenarios),
        agree_with_rules=sum(u.get("model_action") == u.get("rules_action") for _, u in answered),
        failures=dict(Counter(u["failure"] for u in llm if u.get("failure"))),
        prompt_tokens_median=statistics.median(tokens) if tokens else 0.0,
        latency_ms_median=statistics.median(latencies) if latencies else 0.0,
    )


def all_fell_back(scenarios: list[RunScenario]) -> str | None:
    """When no decision used the model: one line naming the cause and the settings to change; else None."""
    if not scenarios or any((s.llm or {}).get("model_action") for s in scenarios):
        return None
    kinds = Counter((s.llm or {}).get("failure") or "no LLM usage recorded" for s in scenarios)
    cause, _ = kinds.most_common(1)[0]
    fix = {
        "timeout": "raise llm.timeout_s (DRIFTWISE_LLM__TIMEOUT_S) and drift.decision_deadline_s above twice it",
        "cut_off": "raise llm.max_output_tokens (DRIFTWISE_LLM__MAX_OUTPUT_TOKENS)",
        "unsupported": "set llm.structured_output to a method the endpoint supports",
        "unreachable": "check llm.base_url (DRIFTWISE_LLM__BASE_URL) and that the endpoint is running",
        "invalid": "try llm.structured_output json_schema or function_calling (a grammar keeps a small model valid)",
    }.get(cause, "see each scenario's llm.fell_back in the JSON")
    return f"every decision fell back to the rules ({cause}: {kinds[cause]} of {len(scenarios)}): {fix}"


def deadline_problem(llm_timeout_s: float, decision_deadline_s: float) -> str | None:
    """A deadline the model's calls cannot fit in ends every slow decision by the deadline instead."""
    if decision_deadline_s <= llm_timeout_s:
        return (f"drift.decision_deadline_s={decision_deadline_s:g}s is not above llm.timeout_s={llm_timeout_s:g}s: "
                "a decision waiting for the model ends at the deadline (escalated) before the model's bound; set "
                f"drift.decision_deadline_s above {REPAIR_CALLS * llm_timeout_s:g}s "
                "(DRIFTWISE_DRIFT__DECISION_DEADLINE_S)")
    if decision_deadline_s < REPAIR_CALLS * llm_timeout_s:
        return (f"drift.decision_deadline_s={decision_deadline_s:g}s leaves no room for the one repair call "
                f"(2 x llm.timeout_s={REPAIR_CALLS * llm_timeout_s:g}s): a repaired answer may end at the deadline")
    return None


def load_runs(paths: list[Path]) -> list[tuple[Path, RunFile]]:
    out = []
    for path in paths:
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise HarnessError(f"{path}: cannot read it: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}: not JSON (line {exc.lineno}): write it with `driftwise eval --json`") from None
        try:
            run = RunFile.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise HarnessError(f"{path}: {where}: {err['msg']} (not a `driftwise eval --json` file)") from None
        if run.reasoner != "llm":
            raise HarnessError(f"{path}: a run of the {run.reasoner} reasoner; the report compares LLM runs "
                               "(`driftwise eval DIR --reasoner llm --json F`)")
        out.append((path, run))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def markdown(runs: list[tuple[Path, RunFile]]) -> str:
    """One table per model: each scenario's label, rules, the model alone per repeat, final; then the totals."""
    by_model: dict[str, list[tuple[Path, RunFile, RunScenario]]] = defaultdict(list)
    for path, run in runs:
        for s in run.scenarios:
            model = (s.llm or {}).get("model") or run.llm_settings.get("model") or "unknown"
            by_model[model].append((path, run, s))
    parts = []
    for model, rows in by_model.items():
        settings = rows[0][1].llm_settings
        scenarios = [s for _, _, s in rows]
        t = summarize(scenarios).as_json()
        knobs = ", ".join(f"{k} {v}" for k, v in settings.items() if k != "model")
        parts.append(f"### {model}\n\n{len({p for p, _, _ in rows})} run(s); {knobs}\n")
        parts.append("| scenario | label | rules | model alone | final | confidence | tokens in/out | latency "
                     "| fell back |")
        parts.append("|---|---|---|---|---|---|---|---|---|")
        for s in sorted(scenarios, key=lambda x: (x.id, x.repeat)):
            u = s.llm or {}
            alone = u.get("model_action") or "—"
            mark = {"correct": "", "safe": " (safe)", "wrong": " (wrong)", "unsafe": " (**unsafe**)"}[model_score(s)]
            alone += mark if alone != "—" else ""
            parts.append(
                f"| {s.id}#{s.repeat} | {s.expected} | {u.get('rules_action') or '—'} | {alone}"
                f" | {s.got} ({s.score}) | {s.confidence if s.confidence is not None else '—'}"
                f" | {u.get('tokens_in', 0)}/{u.get('tokens_out', 0)} | {(s.latency_ms or 0) / 1000:.1f} s"
                f" | {u.get('failure') or ''} |")
        failures = ", ".join(f"{k} {v}" for k, v in sorted(t["failures"].items())) or "none"
        parts.append(
            f"\n**{model}**: model alone {_pct(t['model_alone_accuracy'])} correct, {t['model_alone_unsafe']} unsafe "
            f"(answered {t['model_answered']}/{t['decisions']}); agreement with the rules "
            f"{_pct(t['agreement_with_rules'])}; final {_pct(t['final_accuracy'])} correct, {t['final_unsafe']} "
            f"unsafe; failures: {failures}; median prompt {t['prompt_tokens_median']:.0f} tokens, median latency "
            f"{t['latency_ms_median'] / 1000:.1f} s\n")
    return "\n".join(parts)


TIMING_CHANGES = 40
"""The timing check's data block: about the size of the median visible scenario's compact block."""


@dataclass(frozen=True)
class Preflight:
    problems: list[str]
    info: str


async def preflight(config: Any, decision_deadline_s: float) -> Preflight:
    """Before a run: is the endpoint there, which structured output does it take, and does a prompt of a
    typical size come back within llm.timeout_s? A model too slow for the settings would make every
    decision fall back, which a person should know before waiting for the whole run."""
    from agents.drift.reasoning.llm import LlmFailed, LlmReasoner
    from agents.drift.reasoning.prompt import DATA_CLOSE, DATA_OPEN, INSTRUCTIONS

    problems = [p for p in [deadline_problem(config.timeout_s, decision_deadline_s)] if p]
    data = {"note": "a timing check: answer escalate", "changes": [
        {"path": f"/spec/template/spec/containers/0/env/{i}/value", "git": f"value-{i}", "live": f"value-{i + 1}"}
        for i in range(TIMING_CHANGES)]}
    prompt = (f"Decide this drift event.\n{DATA_OPEN.format(nonce='0')}\n{json.dumps(data)}\n"
              f"{DATA_CLOSE.format(nonce='0')}")
    async with LlmReasoner(config) as reasoner:
        try:
            found = await reasoner.probe(prompt, system=INSTRUCTIONS)
        except LlmFailed as exc:
            if exc.kind == "unreachable":
                raise HarnessError(f"the LLM endpoint {config.base_url} does not answer ({exc}): start it, or fix "
                                   "llm.base_url (DRIFTWISE_LLM__BASE_URL)") from None
            problems.append(f"every decision would fall back: a prompt of a typical size got no answer within "
                            f"llm.timeout_s={config.timeout_s:g}s; raise llm.timeout_s (DRIFTWISE_LLM__TIMEOUT_S) and "
                            "drift.decision_deadline_s above twice it")
            return Preflight(problems=problems, info="")
    if found.method is None:
        tried = "; ".join(f"{m}: {why}" for m, why in found.tried.items())
        problems.append(f"every decision would fall back: the endpoint accepts no structured output ({tried})")
        return Preflight(problems=problems, info="")
    info = (f"LLM endpoint: structured output by {found.method}; a typical prompt ({found.prompt_tokens} tokens) "
            f"answered in {found.latency_s:.1f}s (llm.timeout_s {config.timeout_s:g}s)")
    if found.latency_s > 0.8 * config.timeout_s:
        problems.append(f"a typical prompt took {found.latency_s:.1f}s of llm.timeout_s={config.timeout_s:g}s: "
                        "larger ones will time out and fall back; raise llm.timeout_s")
    return Preflight(problems=problems, info=info)
