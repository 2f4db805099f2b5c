// A stranger's peer, in JavaScript: @a2a-js/sdk (the official A2A SDK) to discover and ask, jose to verify.
//
//   node peer.mjs URL TOKEN PEER_ID REQUEST.json JWKS.json
//
// JWKS.json is the agent's JWKS as the peer pinned it beforehand (not fetched at ask time). Prints one JSON
// line saying what it verified; any failure exits non-zero with the reason on stderr.
import { readFileSync } from "node:fs";
import { ClientFactory, DefaultAgentCardResolver } from "@a2a-js/sdk/client";
import { Role, verifyAgentCardSignature } from "@a2a-js/sdk";
import * as jose from "jose";

const [url, token, peer, requestFile, jwksFile] = process.argv.slice(2);
const pinned = JSON.parse(readFileSync(jwksFile, "utf8"));
const request = readFileSync(requestFile, "utf8");

function fail(message) {
  process.stderr.write(`js peer: ${message}\n`);
  process.exit(1);
}

// 1. Discover: the card as served, and its signature against the pinned key its kid names. The card is
// verified before the SDK's resolver normalizes it: AgentCard.fromJSON in @a2a-js/sdk 1.3.0 drops the
// card's securitySchemes, so the normalized card no longer matches what was signed.
const cardResponse = await fetch(`${url}/.well-known/agent-card.json`);
const served = await cardResponse.json();
let cardKid = null;
await verifyAgentCardSignature(async (kid) => {
  const jwk = pinned.keys.find((k) => k.kid === kid);
  if (!jwk) throw new Error(`card signed by kid ${kid}, which is not pinned`);
  cardKid = kid;
  return jwk;
})(served);
const card = new DefaultAgentCardResolver().normalizeAgentCard(served);
const cacheControl = cardResponse.headers.get("cache-control");
const schemaLink = (card.capabilities?.extensions ?? []).find((e) => e.params?.schema);
if (!schemaLink) fail("the card links no request schema");
const schema = await (await fetch(schemaLink.params.schema)).json();

// 2. Ask: the request as the skill's application/json text part, with the peer's bearer token.
const client = await new ClientFactory().createFromAgentCard(card);
const messageId = crypto.randomUUID();
const message = {
  messageId, contextId: "", taskId: "", role: Role.ROLE_USER, metadata: undefined, extensions: [],
  referenceTaskIds: [],
  parts: [{ content: { $case: "text", value: request }, mediaType: "application/json", metadata: undefined,
            filename: "" }],
};
const task = await client.sendMessage(
  { message, configuration: undefined, metadata: undefined, tenant: "" },
  { serviceParameters: { Authorization: `Bearer ${token}` } },
);
if (!task.artifacts?.length) fail(`no artifact; task state ${task.status?.state}`);
const parts = task.artifacts.flatMap((a) => a.parts);
const text = (type) => parts.find((p) => p.mediaType === type && p.content?.$case === "text")?.content.value;
const jws = text("application/jwt");
const readable = text("application/json");
if (!jws || !readable) fail("the answer has no application/jwt + application/json parts");

// 3. Verify the answer with jose against the pinned JWKS: signer, audience = this peer, the request it answers.
const { payload, protectedHeader } = await jose.jwtVerify(jws, jose.createLocalJWKSet(pinned), {
  issuer: card.name, audience: peer, algorithms: ["EdDSA", "Ed25519"],
});
if (payload.message_id !== messageId) fail(`answer binds message ${payload.message_id}, not ${messageId}`);
if (payload.task_id !== task.id) fail(`answer binds task ${payload.task_id}, not ${task.id}`);
const signed = payload.rec ?? payload.vrd;
if (JSON.stringify(JSON.parse(readable)) !== JSON.stringify(signed)) fail("readable part differs from the signed one");

process.stdout.write(JSON.stringify({
  peer: "js", sdk: "@a2a-js/sdk", jose: "jose", agent: card.name, cardKid, alg: protectedHeader.alg,
  kid: protectedHeader.kid, aud: payload.aud, iss: payload.iss, messageId, taskId: task.id,
  kind: payload.rec ? "recommendation" : "verdict", action: signed.action ?? null,
  schemaId: schema.$id, schemaTitle: schema.title, cacheControl,
}) + "\n");
