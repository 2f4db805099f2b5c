"""The official MCP conformance suite against each Driftwise MCP server over streamable HTTP.

The suite (npm @modelcontextprotocol/conformance, pinned with the Node >= 22 it needs in
tools/mcp-conformance; `make test-tools` installs it) cannot send headers, so the servers under
test run with `--no-auth`, on loopback. conformance-baseline.yml lists, with a reason each, the
scenarios that need the suite's own fixture tools, resources or prompts; the suite fails the run
on any other failure and on a listed scenario that passes. Every scenario of what our servers do
declare (lifecycle, ping, tools, the error result, empty resource and prompt lists, DNS-rebinding
protection) must pass.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from agents.kit.mcp_pool import McpEndpoint
from tests.support.binaries import IN_CI
from tests.support.mcp_stack import SERVERS, Stack, backend_env, start_servers
from tests.support.processes import ROOT

SUITE_DIR = ROOT / "tools" / "mcp-conformance" / "node_modules"
BASELINE = Path(__file__).with_name("conformance-baseline.yml")
DECLARED = {
    "server-initialize", "ping", "tools-list", "tools-call-simple-text", "tools-call-error",
    "server-sse-multiple-streams", "resources-list", "prompts-list", "dns-rebinding-protection",
}
"""The suite's scenarios over what the servers declare. tools-call-simple-text passes on the suite's own
terms: it calls its fixture tool `test_simple_text` and accepts the is_error text result that an
unknown tool gets."""
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


@pytest.fixture(scope="module")
def suite() -> list[str]:
    node = SUITE_DIR / ".bin" / "node"
    script = SUITE_DIR / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if not (node.exists() and script.exists()):
        message = f"the MCP conformance suite is not installed in {SUITE_DIR} (make test-tools; .ci/run does this)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return [str(node), str(script)]


@pytest.fixture(scope="module")
def open_servers(stack: Stack) -> Iterator[dict[str, McpEndpoint]]:
    """The four servers once more, without a bearer token, over the same sandbox."""
    with tempfile.TemporaryDirectory() as state, ExitStack() as processes:
        yield start_servers(processes, backend_env(stack.sandbox_base, state), token=None)


def _outcomes(results: Path) -> dict[str, bool]:
    """Scenario -> passed (a check succeeded and none failed), from the suite's checks.json files."""
    outcomes = {}
    for folder in results.iterdir():
        match = _RESULT_DIR.match(folder.name)
        assert match, f"unexpected result folder {folder.name}"
        statuses = {check["status"] for check in json.loads((folder / "checks.json").read_text())}
        outcomes[match["scenario"]] = "SUCCESS" in statuses and "FAILURE" not in statuses
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_official_conformance_suite(suite: list[str], open_servers: dict[str, McpEndpoint], server: str,
                                    tmp_path: Path) -> None:
    url = open_servers[server].url
    done = subprocess.run([*suite, "server", "--url", url, "--expected-failures", str(BASELINE),
                           "--output-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    expected_failures = set(yaml.safe_load(BASELINE.read_text())["server"])
    outcomes = _outcomes(tmp_path)
    # Every scenario the suite ran is sorted into one of the two sets: a new suite version's new
    # scenario has to be looked at, not silently counted.
    assert set(outcomes) == DECLARED | expected_failures, done.stdout[-3000:]
    assert sorted(s for s in DECLARED if not outcomes[s]) == []
    assert sorted(s for s in expected_failures if outcomes[s]) == []


def test_no_auth_is_refused_off_loopback() -> None:
    from typer.testing import CliRunner

    from driftwise.cli import app

    result = CliRunner().invoke(app, ["mcp", "prometheus", "--no-auth", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "--no-auth" in result.output and "loopback" in result.output and "Traceback" not in result.output
