"""DNS-rebinding protection for a server on loopback, where API keys are optional.

A web page the user visits can make its own domain resolve to 127.0.0.1 and then read the
answers of a server there; its requests carry that domain as Host (and as Origin). So on a
loopback bind the whole API takes only loopback Hosts and Origins: the rule the MCP SDK
already applies at /mcp. Beyond loopback every call needs a key, which a page does not have.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from evergraph.server.limits import reject
from evergraph.server.services import is_loopback


def _loopback_url(url: str) -> bool:
    try:
        return is_loopback(urlsplit(url).hostname or "")
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


class LoopbackHosts:
    """421 for a non-loopback Host, 403 for a non-loopback Origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin", b"").decode("latin-1")
        fix = "call it as http://127.0.0.1:PORT, or serve a non-loopback --host with API keys"
        if not _loopback_url(f"//{host}"):
            await reject(send, 421, f"this server answers only to loopback, not {host!r}", fix)
        elif origin and not _loopback_url(origin):
            await reject(send, 403, f"requests from {origin!r} pages are refused", fix)
        else:
            await self.app(scope, receive, send)
