"""The kit every specialist agent is built from.

A specialist = a `Specialist` subclass (card: description, skills with tags and examples; the
MCP servers it reads and the peers it consults; one typed `analyze(AnalysisRequest) -> Recommendation`)
exposed as `SPECIALIST` by an importable module, plus one `specialists.<name>` line of settings.
The kit provides the rest. Public modules beside this one: `agents.kit.workloads` (reading any
workload: quantities, containers, requests x replicas, namespace labels of the report),
`agents.kit.diff` (how a drift becomes changes), `agents.kit.testing` (build a report, call
analyze() in process, the conformance suite every specialist passes), `agents.kit.knowledge`
(knowledge packs). README "Add a specialist agent" is the guide; examples/cost-specialist the example.

HTTP surface of every kit process (base URL http://host:port):
- `GET  /.well-known/agent-card.json`  the A2A agent card, signed (JWS, EdDSA/Ed25519, `kid` + `jku`)  public
- `GET  /.well-known/jwks.json`        the agent's public signing keys (JWKS)                         public
- `GET  /schemas/analysis-request.json` the JSON Schema of the request (card, JWKS, schema: Cache-Control)  public
- `GET  /healthz`                      `{"ok": true, "agent": ...}`                                   public
- `POST /`                             A2A JSON-RPC binding (SendMessage, SendStreamingMessage, GetTask, ...)
- `/v1/...`                            A2A HTTP+JSON binding (`POST /v1/message:send`, `GET /v1/tasks/{id}`, ...)
Everything but the public paths needs `Authorization: Bearer <specialists.<name>.token>` or a peer's
`specialists.<name>.peer_tokens.<peer>` (else 401).

Request: a message whose `application/json` text part holds a protocol AnalysisRequest (anything
else: JSON-RPC -32602 / HTTP 400 naming the problem; a non-JSON HTTP+JSON body: 415; its JSON Schema
at `/schemas/analysis-request.json`, linked from the card). Answer: a completed Task whose artifact
`recommendation` has an `application/jwt` text part (compact JWS, alg EdDSA; audience = the peer the
caller's token names, or the requester for Driftwise's own agents' role token; `message_id` and
`task_id` = the request it answers) and an `application/json` text part (the Recommendation).
analyze() runs under a deadline; a dependency that fails (peer agent, MCP server) lowers confidence
and is named in the reasoning.
"""

from agents.kit.client import PeerClient
from agents.kit.config import KitConfig, McpServerEndpoint, PeerEndpoint
from agents.kit.errors import KitConfigError, KitError, PeerError
from agents.kit.routing import wants
from agents.kit.specialist import Skill, Specialist

__all__ = [
    "KitConfig",
    "KitConfigError",
    "KitError",
    "McpServerEndpoint",
    "PeerClient",
    "PeerEndpoint",
    "PeerError",
    "Skill",
    "Specialist",
    "wants",
]
