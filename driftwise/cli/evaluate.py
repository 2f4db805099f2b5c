"""`driftwise eval DIR`: score the whole system on a folder of labelled scenarios."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from driftwise.cli import ConfigOption


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        folder: Path = typer.Argument(..., help="folder of labelled scenario files (*.yaml)"),
        json_out: Path | None = typer.Option(None, "--json", help="also write the results as JSON here"),
        reasoner: str = typer.Option("rules", "--reasoner", help="rules | llm (llm uses the llm.* settings)"),
        timeout_s: float | None = typer.Option(
            None, "--timeout", help="seconds to wait for one decision (default: 2x drift.decision_deadline_s + 10)"
        ),
        prometheus: str | None = typer.Option(None, "--prometheus", help="sandbox metrics: auto | real | builtin"),
        keep_state: bool = typer.Option(False, "--keep-state", help="keep the temporary state folder and logs"),
        repeat: int = typer.Option(1, "--repeat", min=1, max=20, help="run every scenario K times (a model varies)"),
        config: Path | None = ConfigOption,
    ) -> None:
        """Start the sandbox on DIR and every process, run each scenario, score the final actions."""
        import asyncio

        from rich.console import Console

        from driftwise.cli import fail, settings_or_exit
        from driftwise.cli.run import announce_autonomous, scratch_state
        from driftwise.evaluation import (
            EvalError,
            accuracy_line,
            confusion_table,
            load_labelled,
            report_json,
            results_table,
            run_eval,
        )
        from driftwise.supervisor import SupervisorError, free_port_block, ports_needed, prepare_settings

        if reasoner not in ("rules", "llm"):
            fail(f"--reasoner must be rules or llm, not {reasoner!r}", 2)
        if prometheus not in (None, "auto", "real", "builtin"):
            fail(f"--prometheus must be auto, real or builtin, not {prometheus!r}", 2)
        settings = settings_or_exit(config)
        if reasoner == "llm" and not settings.llm.base_url:
            fail("--reasoner llm needs an OpenAI-compatible endpoint: set llm.base_url "
                 "(env DRIFTWISE_LLM__BASE_URL) and llm.model / llm.api_key", 2)
        try:
            scenarios = load_labelled(folder)
        except EvalError as exc:
            fail(str(exc), 2)
        err = Console(stderr=True)
        llm_settings = None
        if reasoner == "llm":
            llm_settings = _preflight(settings, err)
        announce_autonomous("eval")
        with scratch_state("driftwise-eval-", keep_state) as state:
            try:
                settings = prepare_settings(settings, state_dir=state, mode="autonomous", llm=reasoner == "llm",
                                            port_base=free_port_block(ports_needed(settings)))
                run = asyncio.run(run_eval(
                    settings, scenarios, folder.resolve(), console=err,
                    timeout_s=timeout_s or settings.drift.decision_deadline_s * 2 + 10,
                    sandbox_args=["--prometheus", prometheus] if prometheus else None, config_file=config,
                    repeat=repeat,
                ))
            except (EvalError, SupervisorError) as exc:
                fail(f"eval could not run: {exc}")
            except KeyboardInterrupt:
                fail("eval interrupted", 130)
        # a pipe or CI log gets the whole table, not one squeezed to 80 columns
        out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 140)
        out.print(results_table(run.results, with_llm=reasoner == "llm"))
        out.print(confusion_table(run.results))
        slowest = max((v for v in run.process_ready_s.values() if v is not None), default=0.0)
        out.print(f"system ready in {run.startup_s:.1f}s (slowest process {slowest:.1f}s); "
                  f"{len(run.results)} scenarios, reasoner {reasoner}")
        for r in run.results:
            if r.error:
                out.print(f"[red]{r.id}[/]: {r.error}", markup=True)
        if json_out is not None:
            report = report_json(run.results, reasoner=reasoner, started_s=run.startup_s, llm_settings=llm_settings)
            json_out.write_text(json.dumps(report, indent=2))
        if reasoner == "llm":
            from driftwise.llm_eval import RunScenario, all_fell_back, summarize

            rows = [RunScenario.model_validate(r.as_json()) for r in run.results]
            t = summarize(rows).as_json()
            out.print(f"model alone: {t['model_alone_accuracy']:.0%} correct, {t['model_alone_unsafe']} unsafe; "
                      f"agreement with the rules {t['agreement_with_rules']:.0%}; failures {t['failures'] or 'none'}")
            warning = all_fell_back(rows)
            if warning:
                err.print(f"[yellow]{warning}[/]")
        typer.echo(accuracy_line(run.results))

    @app.command("eval-report")
    def eval_report(
        runs: list[Path] = typer.Argument(..., help="files written by `driftwise eval DIR --reasoner llm --json F`"),
        out: Path | None = typer.Option(None, "--out", help="write the markdown here instead of printing it"),
    ) -> None:
        """One markdown table per model from LLM evaluation runs: label, rules, model alone, final, totals."""
        from driftwise.cli import fail
        from driftwise.llm_eval import HarnessError, load_runs, markdown

        try:
            text = markdown(load_runs(runs))
        except HarnessError as exc:
            fail(str(exc), 2)
        if out is None:
            typer.echo(text)
        else:
            out.write_text(text)
            typer.echo(f"wrote {out}")


def _preflight(settings: Any, err: Any) -> dict[str, Any]:
    """Warn before a run whose LLM settings make decisions fall back; the settings the report records."""
    import asyncio

    from agents.drift.config import LlmConfig
    from driftwise.cli import fail
    from driftwise.llm_eval import HarnessError, preflight

    llm = settings.llm
    try:
        found = asyncio.run(preflight(LlmConfig(**llm.model_dump()), settings.drift.decision_deadline_s))
    except HarnessError as exc:
        fail(f"eval could not run: {exc}", 2)
    if found.info:
        err.print(found.info)
    for problem in found.problems:
        err.print(f"[yellow]warning: {problem}[/]")
    return {"model": llm.model, "structured_output": llm.structured_output, "prompt": llm.prompt,
            "timeout_s": llm.timeout_s, "max_output_tokens": llm.max_output_tokens,
            "decision_deadline_s": settings.drift.decision_deadline_s}
