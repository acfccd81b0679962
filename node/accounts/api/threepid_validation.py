"""The e-mail ``requestToken`` endpoints and the token submission (client-server
"Adding Account Administrative Contact Information", "Password management", "Account
registration"; administrative_contact.yaml, password_management.yaml, registration.yaml).

* ``POST /register/email/requestToken`` (only with ``email.registration``; otherwise 403
  ``M_THREEPID_DENIED``), ``/account/password/email/requestToken`` and
  ``/account/3pid/email/requestToken``: open a validation session and mail a code
  (``threepid_sessions.py`` has the rules); 400 ``M_THREEPID_MEDIUM_NOT_SUPPORTED`` while
  the node sends no e-mail.
* The three ``msisdn/requestToken`` endpoints: 400 ``M_THREEPID_MEDIUM_NOT_SUPPORTED`` (a
  school node sends no SMS).
* ``submit_url`` (``SUBMIT_PATH``): ``POST`` with ``{sid, client_secret, token}`` answers
  ``{"success": true}`` like the Identity Service API's ``POST
  /validate/email/submitToken``; ``GET`` with the same query parameters is the link in the
  mail: a short HTML page, or a redirect to the session's ``next_link``.
"""

from __future__ import annotations

import html
from typing import Any

from federation.errors import MatrixError

from ...http.server import Response
from ..threepid_sessions import SUBMIT_PATH, threepid_error
from ._common import CLIENT_V3


def _page(status: int, title: str, text: str) -> Response:
    body = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return Response(status, body.encode("utf-8"), "text/html; charset=utf-8")


def register(router: Any, accounts: Any) -> None:
    sessions = accounts.threepid_sessions

    def request_token(purpose: str) -> Any:
        async def handler(req: Any) -> tuple[int, dict]:
            body = req.json()
            sessions.require_enabled()
            if purpose == "register" and not sessions.registration:
                raise threepid_error(
                    "M_THREEPID_DENIED", "Registration on this server does not use e-mail", 403
                )
            return 200, await sessions.request_token(purpose, body, req.client_ip)

        return handler

    async def no_sms(req: Any) -> tuple[int, dict]:
        raise threepid_error(
            "M_THREEPID_MEDIUM_NOT_SUPPORTED", "This server does not support phone numbers"
        )

    async def submit_post(req: Any) -> tuple[int, dict]:
        accounts.guard.attempt(req.client_ip)
        body = req.json()
        await sessions.submit_token(body.get("sid"), body.get("client_secret"), body.get("token"))
        return 200, {"success": True}

    async def submit_get(req: Any) -> Response:
        if req.method == "HEAD":  # link previews and checkers: never validate on HEAD
            return _page(200, "Confirm your e-mail address", "Open this link to confirm.")
        accounts.guard.attempt(req.client_ip)
        try:
            next_link = await sessions.submit_token(
                req.query("sid"), req.query("client_secret"), req.query("token")
            )
        except MatrixError as exc:
            if exc.http_status == 429:
                raise
            return _page(exc.http_status, "This link did not work", exc.message)
        if next_link:
            return Response(302, b"", "text/plain", {"Location": next_link})
        return _page(
            200,
            "E-mail address confirmed",
            "Your e-mail address is confirmed. Go back to your app to continue.",
        )

    for path, purpose in (
        ("/register/email/requestToken", "register"),
        ("/account/password/email/requestToken", "password"),
        ("/account/3pid/email/requestToken", "add"),
    ):
        router.add("POST", CLIENT_V3 + path, request_token(purpose), auth=False)
    for path in (
        "/register/msisdn/requestToken",
        "/account/password/msisdn/requestToken",
        "/account/3pid/msisdn/requestToken",
    ):
        router.add("POST", CLIENT_V3 + path, no_sms, auth=False)
    router.add("POST", SUBMIT_PATH, submit_post, auth=False)
    router.add("GET", SUBMIT_PATH, submit_get, auth=False)
