"""README's configuration reference is generated from the settings models, required fields included."""

from __future__ import annotations

from driftwise.settings_reference import HEADER, markdown, rows
from tests.support.processes import ROOT


def test_readme_holds_the_generated_reference() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(HEADER)
    table = readme[start:readme.index("\n\n", start)]
    assert table == markdown(), "README's configuration reference is stale: python -m driftwise.settings_reference"


def test_a_field_without_a_default_says_required() -> None:
    by_name = {r.setting: r for r in rows()}
    assert by_name["specialists.<name>.module"].default == "(required)"
    assert by_name["specialists.<name>.port"].default == "(required)"
    assert "PydanticUndefined" not in markdown()
    assert by_name["argocd.token"].default == "(sandbox token)" and "sandbox-argocd-token" not in markdown()
    assert by_name["drift.approvals_token"].default == "(drawn by up)"
