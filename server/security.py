"""Security headers, set by the app itself so they hold behind any proxy (issue 4)."""

from __future__ import annotations

from flask import Flask, Response, g, request

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    # same-origin, not no-referrer: Flask-WTF's HTTPS check wants the Referer of our own forms.
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if getattr(g, "account", None) is not None or request.method == "POST":
        headers["Cache-Control"] = "no-store"
    elif request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-cache")
    if request.is_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return response


def install(app: Flask) -> None:
    app.after_request(add_security_headers)
