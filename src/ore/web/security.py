"""Who is asking, and the protections around it: session cookies, CSRF, login rate limits, headers.

- A signed-in browser holds the session secret of ``ore.auth.sessions`` (the same sessions
  ``ore login`` opens: 30 minutes idle, 12 hours at most) in a ``__Host-`` cookie: Secure,
  HttpOnly, SameSite=Strict, path ``/``, no domain. Only its SHA-256 is in the store.
- CSRF: every form and htmx request that changes something carries a token derived from
  the session secret with the server's key (HMAC), checked in constant time. Before
  sign-in, the login form is tied to a random ``__Host-`` pre-login cookie the same way.
- The API takes ``Authorization: Bearer <token>`` (the scoped tokens of ``ore tokens``)
  and never cookies, so no page can be made to call it on a user's behalf.
- Sign-in attempts are limited per client address and per user name in memory, before
  the password is even hashed; the store's own lock-out (5 failures) still applies.
- Headers: a CSP with no inline script or style, no framing, no referrer, no sniffing;
  ``Cache-Control: no-store`` on everything but the static assets (person pages above all).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

SESSION_COOKIE = "__Host-ore_session"
PRELOGIN_COOKIE = "__Host-ore_prelogin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Strict-Transport-Security": "max-age=31536000",
}


def csrf_token(key: bytes, secret: str, purpose: str = "session") -> str:
    """The CSRF token for a session (or pre-login) secret: an HMAC nobody without the server key can make."""
    return hmac.new(key, f"{purpose}:{secret}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, secret: str | None, given: str | None, purpose: str = "session") -> bool:
    if not secret or not given:
        return False
    return hmac.compare_digest(csrf_token(key, secret, purpose), given)


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    """A ``__Host-`` cookie: Secure, HttpOnly, SameSite=Strict, path /, no Domain (the prefix demands it)."""
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def new_prelogin() -> str:
    return secrets.token_urlsafe(24)


class RateLimiter:
    """At most ``limit`` attempts per key in ``window`` seconds (a sliding window, in memory, per process)."""

    def __init__(self, limit: int = 10, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, *keys: str) -> bool:
        """Count one attempt against every key; refuse if any key is over its limit."""
        now = time.monotonic()
        with self._lock:
            ok = True
            for key in keys:
                q = self._hits[key]
                while q and now - q[0] > self.window:
                    q.popleft()
                if len(q) >= self.limit:
                    ok = False
            if ok:
                for key in keys:
                    self._hits[key].append(now)
            return ok


class SecurityHeaders(BaseHTTPMiddleware):
    """The headers above on every response; no-store on everything but ``/static``."""

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        if request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "public, max-age=3600"
        else:
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        return response
