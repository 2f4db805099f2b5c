"""Who is answering: an authenticating proxy's identity headers, believed only from the proxy's addresses.

An authenticating proxy (oauth2-proxy) in front of the drift agent signs people in and passes who they are
in headers (`X-Forwarded-User`, `X-Forwarded-Email`, `X-Forwarded-Groups`). Anyone can send those headers,
so they are believed only from the source addresses `console.proxy.trusted_cidrs` lists (the TCP peer:
uvicorn runs with proxy_headers off, so an X-Forwarded-For never moves it). A request carrying one of
them from any other address is refused (403), never served as if the header were not there. With no
trusted address (the default) every identity header is refused and the console keeps its own sign-in.
"""

from __future__ import annotations

import ipaddress

from pydantic import ValidationError
from starlette.requests import Request

from agents.drift.config import ProxyConfig
from agents.drift.errors import DriftAgentError
from protocol.models import Identity, IdentitySource


class IdentityRefused(DriftAgentError):
    """A request's identity cannot be believed or read; `status` is its HTTP answer (403, or 400)."""

    kind = "identity_refused"

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def peer_of(request: Request) -> str | None:
    return request.client.host if request.client else None


class ProxyTrust:
    """Reads identities from the authenticating proxy's headers, from the addresses it connects from only."""

    def __init__(self, config: ProxyConfig) -> None:
        self._config = config
        self._headers = (config.user_header, config.email_header, config.groups_header)

    @property
    def enabled(self) -> bool:
        """A proxy is configured: identities come from it, and the console's own sign-in is off."""
        return bool(self._config.trusted)

    @property
    def user_header(self) -> str:
        return self._config.user_header

    def trusts(self, peer: str | None) -> bool:
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:  # not an IP address (a Unix socket's peer): not a configured proxy
            return False
        return any(address in network for network in self._config.trusted)

    def identify(self, request: Request) -> Identity | None:
        """The proxy's identity of this request; None when it carries no identity header; IdentityRefused
        when it carries one from an untrusted address, or one that cannot be read."""
        sent = [name for name in self._headers if name in request.headers]
        if not sent:
            return None
        peer = peer_of(request)
        if not self.trusts(peer):
            trusted = ", ".join(str(n) for n in self._config.trusted)
            why = (f"only from {trusted} (console.proxy.trusted_cidrs)" if trusted
                   else "from nobody: console.proxy.trusted_cidrs is empty")
            raise IdentityRefused(f"This request carries {sent[0]} but comes from {peer or 'an unknown address'}; "
                                  f"identity headers are believed {why}. Reach Driftwise through its "
                                  "authenticating proxy, or send no identity header.")
        values: dict[str, str] = {}
        for name in sent:
            found = request.headers.getlist(name)
            if len(found) > 1:
                raise IdentityRefused(f"The proxy sent {name} {len(found)} times: send it once.", 400)
            values[name] = found[0].strip()
        user_header, email_header, groups_header = self._headers
        user = values.get(user_header) or values.get(email_header)
        if not user:
            raise IdentityRefused(f"The proxy sent no {user_header}: pass the signed-in user "
                                  "(oauth2-proxy: --pass-user-headers or --set-xauthrequest).", 400)
        groups = [g.strip() for g in values.get(groups_header, "").split(",") if g.strip()]
        return _identity(user, values.get(email_header) or None, groups, "proxy", peer)


def asserted(name: str, via: IdentitySource, peer: str | None) -> Identity:
    """An identity nobody vouched for: the name someone gave along with the approvals token."""
    return _identity(name, None, [], via, peer)


def _identity(user: str, email: str | None, groups: list[str], via: IdentitySource, peer: str | None) -> Identity:
    try:
        return Identity(user=user, email=email, groups=groups, via=via, peer=peer)
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise IdentityRefused(f"The identity's {field} cannot be recorded ({exc.errors()[0]['msg']}).", 400) from exc
