"""Cost of signing and verifying one recommendation (Ed25519 compact JWS via joserfc)."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from protocol.models import Action, Recommendation
from protocol.signing import Signer, TrustStore, Verifier, generate_key


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def run(n: int = 2000) -> dict[str, float]:
    key = generate_key("security")
    trust = TrustStore()
    trust.add("security", key)
    signer = Signer("security", key)
    verifier = Verifier(trust, "drift")
    rec = Recommendation(
        event_id="evt-bench", agent="security", domain="security", action=Action.ENFORCE, confidence=0.93,
        reasoning="privileged: true at /spec/template/spec/containers/0/securityContext/privileged " * 4,
        created_at=datetime.now(UTC),
    )
    sign_us, verify_us, tokens = [], [], []
    for _ in range(n):
        t0 = time.perf_counter()
        tokens.append(signer.sign_recommendation(rec, ["drift"]).jws)
        sign_us.append((time.perf_counter() - t0) * 1e6)
    for token in tokens:
        t0 = time.perf_counter()
        verifier.verify_recommendation(token, "evt-bench")
        verify_us.append((time.perf_counter() - t0) * 1e6)
    s50, s99 = _percentiles(sign_us)
    v50, v99 = _percentiles(verify_us)
    return {"sign_p50_us": s50, "sign_p99_us": s99, "verify_p50_us": v50, "verify_p99_us": v99}


def main() -> None:
    r = run()
    print(f"sign:   p50 {r['sign_p50_us']:.0f} us  p99 {r['sign_p99_us']:.0f} us")
    print(f"verify: p50 {r['verify_p50_us']:.0f} us  p99 {r['verify_p99_us']:.0f} us (signature, claims, model)")


if __name__ == "__main__":
    main()
