"""Cross-site protection: a request from a page of another site is refused, whatever name the app is reached by.

A browser tells where a request comes from: ``Origin`` (every cross-origin request and every POST),
``Sec-Fetch-Site`` and ``Referer``. :func:`cross_site_reason` compares them with the request's own ``Host``
(the name the browser used, a LAN address or the share link's host alike), so a page elsewhere cannot act for
a viewer (save a correction, delete them all, switch the model) nor read the app's answers. Clients that are
not browsers (curl, gradio_client) send none of these and pass: sign-in (:mod:`fer_app.access`) is their check.

    app.add_middleware(SameOriginOnly)  # a FastAPI or Starlette service
    launch(app_kwargs={"lifespan": guarded_lifespan})  # Gradio: outermost, ahead of its CORS middleware
"""

from __future__ import annotations

import contextlib
import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

#: Methods that change state; a request with one of them must come from the app's own pages.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_and_port(url_or_host: str) -> tuple[str, int | None] | None:
    """``(hostname, explicit port or None)`` of a URL (``https://a.b:8080/x``) or a Host header (``a.b:8080``),
    lower case; None when it cannot be parsed."""
    text = url_or_host if "//" in url_or_host else f"//{url_or_host}"
    try:
        parts = urlsplit(text)
        return (parts.hostname, parts.port) if parts.hostname else None
    except ValueError:  # a port that is not a number
        return None


def same_place(url: str, own_hosts: list[str]) -> bool:
    """Whether ``url`` (an Origin or Referer) names one of ``own_hosts`` (Host headers): the same name and port.
    The scheme is not compared: a TLS proxy in front (the share link's tunnel) changes it, and only someone who
    controls this very name could serve a page from it."""
    theirs = host_and_port(url)
    return theirs is not None and any(theirs == host_and_port(own) for own in own_hosts if own)


def cross_site_reason(scope: Scope) -> str | None:
    """Why this request must be refused as coming from another site (None: it may go on). Any request with a
    foreign ``Origin`` (``null`` included) is refused; a state-changing one (:data:`UNSAFE_METHODS`, or a
    WebSocket) also when ``Sec-Fetch-Site`` says another site or ``Referer`` names one."""
    headers = Headers(scope=scope)
    own = [headers.get("host", ""), headers.get("x-forwarded-host", "").split(",")[0].strip()]
    origin = headers.get("origin")
    if origin is not None:
        return None if same_place(origin, own) else f"a page of another site ({origin[:100]}) may not use this app"
    if scope["type"] == "websocket" or scope.get("method", "GET") in UNSAFE_METHODS:
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            return f"a page of another site ({site}) may not change anything here"
        referer = headers.get("referer")
        if referer and not same_place(referer, own):
            return f"a page of another site ({referer[:100]}) may not change anything here"
    return None


class SameOriginOnly:
    """ASGI middleware: requests :func:`cross_site_reason` refuses get 403 with a JSON ``error`` (a WebSocket is
    closed before it opens); the others go on unchanged. Preflight requests from other sites are refused too,
    so their pages are never told they may call or read this app."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = cross_site_reason(scope) if scope["type"] in ("http", "websocket") else None
        if reason is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
        else:
            body = json.dumps({"error": reason}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def guarded_lifespan(app):
    """A lifespan that puts :class:`SameOriginOnly` outside the app's whole middleware stack (Starlette has
    built it when the lifespan starts, before any request): ahead of Gradio's CORS middleware, which would
    otherwise answer another site's preflight with its own ``Access-Control-Allow-Origin``."""
    app.middleware_stack = SameOriginOnly(app.middleware_stack or app.build_middleware_stack())
    yield
