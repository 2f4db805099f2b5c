"""`driftwise policy`: run the Rego tests of the guardrail policy, or evaluate it for one input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    policy = typer.Typer(help="The guardrail's Rego policy: test it, evaluate it.", no_args_is_help=True)
    app.add_typer(policy, name="policy")

    @policy.command("test")
    def test_cmd(
        directory: Path | None = typer.Argument(None, help="folder of .rego files (default: the repo's policies/)"),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="print every test, not only failures"),
    ) -> None:
        """Run every `test_*` rule of every `*_test.rego` in DIRECTORY; exit 1 when one fails."""
        from agents.drift.guardrail import PolicyError, default_policy_dir
        from agents.drift.guardrail.rego_tests import run
        from driftwise.cli import fail

        try:
            folder = directory or default_policy_dir()
            passed = failed = 0
            for result in run(folder):
                if result.passed:
                    passed += 1
                    if verbose:
                        typer.echo(f"PASS {result.file}: {result.id} ({result.ms:.1f} ms)")
                else:
                    failed += 1
                    typer.echo(f"FAIL {result.file}: {result.id}: {result.detail}")
                sys.stdout.flush()
        except PolicyError as exc:
            fail(str(exc), 2)
        total = passed + failed
        if total == 0:
            fail(f"no test_* rules in any *_test.rego under {folder}", 2)
        typer.echo(("PASS" if not failed else "FAIL") + f": {passed}/{total}")
        if failed:
            raise typer.Exit(1)

    @policy.command("eval")
    def eval_cmd(
        input_file: Path = typer.Option(..., "--input", "-i", help="JSON file holding the policy input"),
        directory: Path | None = typer.Option(None, "--dir", help="folder of .rego files (default: policies/)"),
        entrypoint: str = typer.Option("driftwise/guardrail/verdict", "--entrypoint", help="rule path"),
    ) -> None:
        """Evaluate the policy for one input document and print `{"result": ..., "decision_id": ...}`."""
        from agents.drift.guardrail import PolicyError, RegoEngine, default_policy_dir
        from driftwise.cli import fail

        try:
            document = json.loads(input_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            fail(f"--input {input_file} is not a readable JSON file: {exc}", 2)
        if not isinstance(document, dict):
            fail(f"--input {input_file} must hold a JSON object", 2)
        try:
            engine = RegoEngine(directory or default_policy_dir(), entrypoint)
            try:
                typer.echo(json.dumps(engine.evaluate_sync(document), indent=2))
            finally:
                engine.close()
        except PolicyError as exc:
            fail(str(exc))
