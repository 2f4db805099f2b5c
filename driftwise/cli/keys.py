"""`driftwise keys`: generate agent key pairs and maintain the trust store."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="Ed25519 signing keys (JWK) and the trust store that pins them to agents.",
                       no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("generate")
    def generate(
        agent: str = typer.Option(..., "--agent", help="agent id the key signs for (e.g. security)"),
        out: Path = typer.Option(..., "--out", help="folder for <agent>.private.jwk.json and <agent>.jwks.json"),
        trust: Path | None = typer.Option(None, "--trust", help="also pin the public key in this trust store"),
    ) -> None:
        """Write a new key pair for AGENT; with --trust, add its public key to a trust store file."""
        from driftwise.cli import fail
        from protocol.signing import TrustStore, generate_key, write_key_pair

        key = generate_key(agent)
        private, public = write_key_pair(key, agent, out)
        if trust is not None:
            from protocol.errors import KeyStoreError

            try:
                store = TrustStore.load(trust) if trust.exists() else TrustStore()
                store.add(agent, key)
            except KeyStoreError as exc:
                fail(str(exc))
            store.save(trust)
        typer.echo(json.dumps({"agent": agent, "kid": key.kid, "private": str(private), "public": str(public)}))

    @keys.command("trust")
    def trust_cmd(
        agent: str = typer.Option(..., "--agent", help="agent id that owns the keys"),
        jwks: Path = typer.Option(..., "--jwks", help="the agent's public JWKS file"),
        store_path: Path = typer.Option(..., "--store", help="trust store file to create or extend"),
    ) -> None:
        """Pin the public keys in JWKS to AGENT in a trust store file."""
        from driftwise.cli import fail
        from protocol.errors import KeyStoreError
        from protocol.signing import TrustStore

        try:
            store = TrustStore.load(store_path) if store_path.exists() else TrustStore()
            store.add_jwks(agent, json.loads(jwks.read_text()))
        except (KeyStoreError, OSError, json.JSONDecodeError) as exc:
            fail(f"cannot trust {jwks} for {agent}: {exc}")
        store.save(store_path)
        typer.echo(f"trusted {agent}: {', '.join(store.agents().get(agent, []))}")
