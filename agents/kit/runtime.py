"""What one specialist process holds while it runs: keys, signer, verifier, the shared HTTP client, peers, MCP."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc.jwk import OKPKey

from agents.kit.client import PeerClient
from agents.kit.config import KitConfig
from agents.kit.errors import KitConfigError
from protocol.errors import KeyStoreError
from protocol.signing import ReplayCache, Signer, TrustStore, Verifier, load_private_key

log = logging.getLogger(__name__)


def load_keys(config: KitConfig) -> tuple[OKPKey, TrustStore]:
    """The agent's private key and the trust store; a missing key names the command that makes one."""
    path = config.private_key_path
    if not path.exists():
        raise KitConfigError(
            f"no signing key for agent {config.agent!r} at {path}: run `driftwise keys generate --agent "
            f"{config.agent} --out {config.keys_dir} --trust {config.trust_store}`"
        )
    try:
        key = load_private_key(path)
    except KeyStoreError as exc:
        raise KitConfigError(str(exc)) from exc
    try:
        trust = TrustStore.load(config.trust_store) if config.trust_store.exists() else TrustStore()
    except KeyStoreError as exc:
        raise KitConfigError(str(exc)) from exc
    return key, trust


@dataclass
class Runtime:
    config: KitConfig
    key: OKPKey
    trust: TrustStore
    http: httpx.AsyncClient
    signer: Signer
    verifier: Verifier
    peers: PeerClient
    replay: ReplayCache = field(default_factory=ReplayCache)
    """Peers' answers are accepted once (verifying is pure; using a `jti` is this cache's step)."""
    mcp: Any | None = None  # agents.kit.mcp_pool.McpPool when MCP servers are configured
    sources: Any | None = None  # agents.kit.bindings.BoundSources: the needs, through their bindings

    @classmethod
    def create(
        cls, config: KitConfig, http: httpx.AsyncClient, *, key: OKPKey | None = None, trust: TrustStore | None = None,
    ) -> Runtime:
        """The runtime of one specialist; with `key` (and `trust`) given, nothing is read from disk
        (agents.kit.testing builds one in memory this way)."""
        if key is None:
            key, stored = load_keys(config)
            trust = trust or stored
        trust = trust or TrustStore()
        return cls(
            config=config, key=key, trust=trust, http=http,
            signer=Signer(agent=config.agent, key=key),
            # Peers' answers are bound to this agent as audience; `replay` refuses a second use.
            verifier=Verifier(trust=trust, audience=config.agent),
            peers=PeerClient(http),
        )

    async def start(self) -> None:
        if not self.config.mcp_servers:
            return
        from agents.kit.bindings import BoundSources
        from agents.kit.mcp_pool import McpEndpoint, McpPool

        servers = {n: McpEndpoint(url=s.url, token=s.token, command=s.command, args=tuple(s.args), env=s.env,
                                  open_timeout_s=s.open_timeout_s)
                   for n, s in self.config.mcp_servers.items()}
        self.mcp = McpPool(servers, call_timeout_s=self.config.mcp_timeout_s)
        try:
            await self.mcp.start()
        except Exception:  # an MCP server that is down at start-up degrades answers; it must not stop the agent
            log.warning("MCP pool did not fully start; context calls will report the failure", exc_info=True)
        self.sources = BoundSources(self.mcp, self.config.bindings,
                                    frozenset(n for n, s in self.config.mcp_servers.items() if s.read_only_mode))
        try:
            await self.sources.check()  # a missing or mis-bound tool stops start-up, naming the binding
        except BaseException:
            await self.mcp.close()
            raise

    async def close(self) -> None:
        if self.mcp is not None:
            await self.mcp.close()
