"""E-mail validation sessions: ``requestToken`` opens one, the mailed code validates it,
and an operation (registration, password reset, adding a contact address) consumes it
(client-server "Email-based (identity / homeserver)", request_email_validation.yaml,
request_token_response.yaml; the token submission follows the Identity Service API's
``POST /validate/email/submitToken``, which the spec's ``submit_url`` points to).

Rules:
1. ``client_secret`` (and the ``sid`` we hand out) match ``[0-9a-zA-Z.=_-]{1,255}``;
   ``send_attempt`` is a non-negative integer; ``next_link`` an absolute http(s) URL; the
   address a plain ASCII e-mail address (one ``@``, a local part of RFC 5322 "atext" and
   dots, at most 254 characters; the domain is lower-cased) -- else 400 ``M_INVALID_PARAM``.
2. One session per (client secret, address, purpose).  A ``send_attempt`` not greater than
   the last one seen answers the same ``sid`` without mailing again (client retries); a
   greater one mails a fresh code to the same session.
3. Whether an address is known is never revealed by the answer: ``register`` and ``add``
   for an address that already belongs to an account, and ``password`` for one that belongs
   to none, answer like any other request but mail a notice instead of a code (the spec's
   recommendation for ``/register/email/requestToken``; "may instead send an email" for the
   password reset), and the session can never be validated.
4. Limits: mails per address (``ADDRESS_BURST`` at once, then one per
   ``1/ADDRESS_PER_SECOND`` s) and requests per client address (``IP_BURST``, then
   ``IP_PER_SECOND``) -- 429 ``M_LIMIT_EXCEEDED``; at most ``MAX_LIVE_SESSIONS`` unexpired
   sessions in all (expired ones are deleted first); the code expires after
   ``email.token_lifetime_s`` (1 h) and allows ``MAX_FAILED_ATTEMPTS`` wrong guesses.
5. The code is 10 characters from a 32-letter alphabet without look-alikes (50 bits: typed
   by hand or carried by the mailed link), matched case-insensitively, stored only as its
   SHA-256 digest and compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from federation.errors import InvalidParam, MatrixError

from ..ratelimit import RateLimiter
from . import threepid_store
from .threepid_mailer import Mailer, MailError
from .tokens import hash_token

log = logging.getLogger("parta.accounts")

EMAIL = "email"
PURPOSES = ("register", "password", "add")
SUBMIT_PATH = "/_parta/v1/threepid/email/submit_token"

_OPAQUE = re.compile(r"^[0-9a-zA-Z.=_\-]{1,255}$")
# The local part: RFC 5322 "atext" and dots (no quoting, commas or angle brackets, so an
# address is always exactly one recipient); the domain: ASCII labels.
_EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}@[A-Za-z0-9][A-Za-z0-9.\-]{0,252}$")
MAX_EMAIL_CHARS = 254
MAX_NEXT_LINK_CHARS = 2000
MAX_SEND_ATTEMPT = 2**53 - 1

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10
MAX_CODE_CHARS = 64
MAX_FAILED_ATTEMPTS = 5
MAX_LIVE_SESSIONS = 10_000

ADDRESS_PER_SECOND = 1 / 60
ADDRESS_BURST = 3
IP_PER_SECOND = 1 / 10
IP_BURST = 10


def threepid_error(errcode: str, message: str, status: int = 400) -> MatrixError:
    return MatrixError(message, errcode=errcode, http_status=status)


def check_opaque(value: Any, key: str) -> str:
    """Rule 1 for ``client_secret`` and ``sid``."""
    if not isinstance(value, str):
        raise MatrixError(f"Missing or invalid '{key}'", errcode="M_MISSING_PARAM")
    if not _OPAQUE.match(value):
        raise InvalidParam(f"'{key}' must be 1-255 characters of [0-9a-zA-Z.=_-]")
    return value


def normalise_email(value: Any) -> str:
    """Rule 1: a plain address, the domain lower-cased (``M_INVALID_PARAM`` otherwise)."""
    if not isinstance(value, str):
        raise MatrixError("Missing or invalid 'email'", errcode="M_MISSING_PARAM")
    value = value.strip()
    if len(value) > MAX_EMAIL_CHARS or not _EMAIL.match(value) or ".." in value.split("@")[1]:
        raise InvalidParam("Invalid e-mail address")
    local, domain = value.split("@")
    return f"{local}@{domain.lower()}"


def check_send_attempt(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MatrixError("Missing or invalid 'send_attempt'", errcode="M_MISSING_PARAM")
    if not 0 <= value <= MAX_SEND_ATTEMPT:
        raise InvalidParam("'send_attempt' must be a non-negative integer")
    return value


def check_next_link(value: Any) -> str | None:
    """Rule 1: an absolute http(s) URL (it becomes a redirect: no other scheme)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NEXT_LINK_CHARS:
        raise InvalidParam("'next_link' must be an http(s) URL")
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(c in value for c in "\r\n\x00 ")
    ):
        raise InvalidParam("'next_link' must be an http(s) URL")
    return value


def generate_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_hash(code: str) -> str:
    return hash_token(code.strip().upper())


class ValidationSessions:
    """The validation sessions of one node; ``mailer`` None means e-mail is off."""

    def __init__(
        self,
        *,
        db: Any,
        clock: Any,
        mailer: Mailer | None,
        server_name: str,
        public_baseurl: str,
        lifetime_ms: int,
        registration: bool = False,
        rate_limits_enabled: bool = True,
    ) -> None:
        self._db = db
        self._now_ms: Callable[[], int] = clock.time_ms
        self.mailer = mailer
        self._server_name = server_name
        self._base = public_baseurl.rstrip("/")
        self.lifetime_ms = lifetime_ms
        self._registration = registration
        self._per_address = RateLimiter(
            clock,
            per_second=ADDRESS_PER_SECOND,
            burst_count=ADDRESS_BURST,
            enabled=rate_limits_enabled,
        )
        self._per_ip = RateLimiter(
            clock, per_second=IP_PER_SECOND, burst_count=IP_BURST, enabled=rate_limits_enabled
        )

    @property
    def enabled(self) -> bool:
        return self.mailer is not None

    @property
    def registration(self) -> bool:
        """Registration asks for a validated address (``email.registration``)."""
        return self._registration and self.mailer is not None

    @property
    def submit_url(self) -> str:
        return self._base + SUBMIT_PATH

    def require_enabled(self) -> None:
        if self.mailer is None:
            raise threepid_error(
                "M_THREEPID_MEDIUM_NOT_SUPPORTED", "This server does not send e-mail"
            )

    # --- requestToken ------------------------------------------------------------------
    async def request_token(
        self,
        purpose: str,
        body: dict,
        client_ip: str | None,
    ) -> dict:
        """Rules 1-4; the ``requestToken`` answer (``sid``, ``submit_url``)."""
        self.require_enabled()
        client_secret = check_opaque(body.get("client_secret"), "client_secret")
        address = normalise_email(body.get("email"))
        send_attempt = check_send_attempt(body.get("send_attempt"))
        next_link = check_next_link(body.get("next_link"))
        if body.get("id_server") is not None:
            # Ignored when the homeserver validates (the spec); only its type is checked.
            if not isinstance(body["id_server"], str):
                raise MatrixError("'id_server' must be a string", errcode="M_BAD_JSON")
        self._per_ip.check("ip:" + (client_ip or "?"))
        now = self._now_ms()

        existing = await self._db.run(
            lambda conn: threepid_store.find_session(
                conn,
                client_secret=client_secret,
                medium=EMAIL,
                address=address,
                purpose=purpose,
                now_ms=now,
            )
        )
        if existing is not None and send_attempt <= existing["send_attempt"]:
            return self._answer(existing["session_id"])  # rule 2: a retry
        self._per_address.check(address)
        owner = await self._db.run(threepid_store.threepid_owner, EMAIL, address)
        usable = (owner is None) if purpose in ("register", "add") else (owner is not None)
        code = generate_code()
        sid = existing["session_id"] if existing else secrets.token_urlsafe(18)
        values = {
            "send_attempt": send_attempt,
            "next_link": next_link,
            "token_hash": code_hash(code),
            "failed_attempts": 0,
            "usable": usable,
            "expires_ts": now + self.lifetime_ms,
            "validated_ts": None,
        }
        if existing is None:
            await self._db.run(self._make_room, now)
        await self._send(purpose, address, sid, client_secret, code if usable else None)

        def txn(conn: Any) -> None:
            if existing is not None:
                threepid_store.update_session(conn, sid, **values)
                return
            threepid_store.insert_session(
                conn,
                session_id=sid,
                medium=EMAIL,
                address=address,
                client_secret=client_secret,
                purpose=purpose,
                created_ts=now,
                **values,
            )

        await self._db.run(txn)
        log.info("event=threepid_token_sent purpose=%s sid=%s usable=%s", purpose, sid, usable)
        return self._answer(sid)

    @staticmethod
    def _make_room(conn: Any, now: int) -> None:
        """Rule 4: expired sessions go (an indexed delete), then at most
        ``MAX_LIVE_SESSIONS`` may be live (checked before the mail goes out, so a refused
        request sends nothing)."""
        threepid_store.delete_expired_sessions(conn, now)
        if threepid_store.count_live_sessions(conn, now) >= MAX_LIVE_SESSIONS:
            raise threepid_error("M_LIMIT_EXCEEDED", "Too many validation sessions, try later", 429)

    def _answer(self, sid: str) -> dict:
        return {"sid": sid, "submit_url": self.submit_url}

    def link(self, sid: str, client_secret: str, code: str) -> str:
        query = urlencode({"sid": sid, "client_secret": client_secret, "token": code})
        return f"{self.submit_url}?{query}"

    async def _send(
        self, purpose: str, address: str, sid: str, client_secret: str, code: str | None
    ) -> None:
        assert self.mailer is not None
        subject, text = self._mail_text(purpose, sid, client_secret, code)
        try:
            await self.mailer.send(address, subject, text)
        except MailError as exc:
            log.warning("event=threepid_mail_failed purpose=%s error=%s", purpose, exc)
            raise threepid_error(
                "M_UNKNOWN", "The e-mail could not be sent; please try again later", 503
            ) from None

    def _mail_text(
        self, purpose: str, sid: str, client_secret: str, code: str | None
    ) -> tuple[str, str]:
        server = self._server_name
        if code is None:
            if purpose == "password":
                return (
                    f"Password reset on {server}",
                    f"Someone asked to reset the password of an account on {server} with "
                    "this e-mail address, but no account there uses it.\n\n"
                    "If this was you, ask your school which address your account uses.\n"
                    "If not, you can ignore this mail.\n",
                )
            return (
                f"E-mail address already in use on {server}",
                f"Someone asked to use this e-mail address for an account on {server}, "
                "but an account there already uses it.\n\n"
                'If you forgot that account\'s password, use "Forgot password" in your '
                "app.\nIf this was not you, you can ignore this mail.\n",
            )
        action = {
            "register": "register an account",
            "password": "reset the password of your account",
            "add": "add this e-mail address to your account",
        }[purpose]
        minutes = self.lifetime_ms // 60_000
        return (
            f"Your code for {server}: {code}",
            f"Someone, hopefully you, asked to {action} on {server}.\n\n"
            f"Your code: {code}\n\n"
            f"Enter it in your app, or open this link:\n{self.link(sid, client_secret, code)}\n\n"
            f"The code is valid for {minutes} minutes. If this was not you, ignore this mail: "
            "nothing changes without the code.\n",
        )

    # --- submitToken -------------------------------------------------------------------
    async def submit_token(self, sid: Any, client_secret: Any, token: Any) -> str | None:
        """Validate a session with its code (rule 5); returns the session's ``next_link``.

        400 ``M_INVALID_PARAM`` (unknown session or wrong secret), ``M_SESSION_EXPIRED``
        (expired or out of attempts), ``M_TOKEN_INCORRECT`` (wrong code)."""
        sid = check_opaque(sid, "sid")
        client_secret = check_opaque(client_secret, "client_secret")
        if not isinstance(token, str) or not token:
            raise MatrixError("Missing 'token'", errcode="M_MISSING_PARAM")
        now = self._now_ms()
        given = code_hash(token) if len(token) <= MAX_CODE_CHARS else ""

        def txn(conn: Any) -> str | None:
            row = threepid_store.get_session(conn, sid)
            if row is None or not hmac.compare_digest(row["client_secret"], client_secret):
                raise InvalidParam("Unknown validation session")
            if row["expires_ts"] <= now or row["failed_attempts"] >= MAX_FAILED_ATTEMPTS:
                raise threepid_error(
                    "M_SESSION_EXPIRED", "This code has expired; ask for a new one"
                )
            if row["validated_ts"] is not None:
                return row["next_link"]
            if not row["usable"] or not hmac.compare_digest(row["token_hash"], given):
                threepid_store.update_session(conn, sid, failed_attempts=row["failed_attempts"] + 1)
                return _WRONG
            threepid_store.update_session(conn, sid, validated_ts=now)
            return row["next_link"]

        result = await self._db.run(txn)
        if result is _WRONG:
            raise threepid_error("M_TOKEN_INCORRECT", "The code is incorrect")
        return result

    # --- using a validated session -----------------------------------------------------
    async def validated(self, sid: Any, client_secret: Any, purpose: str) -> dict:
        """The validated session's row (``address``, ``validated_ts``) for ``purpose``;
        403 ``M_THREEPID_AUTH_FAILED`` if there is none (unknown, wrong secret, other
        purpose, expired or not validated yet)."""
        sid = check_opaque(sid, "sid")
        client_secret = check_opaque(client_secret, "client_secret")
        now = self._now_ms()
        row = await self._db.run(threepid_store.get_session, sid)
        if (
            row is None
            or not hmac.compare_digest(row["client_secret"], client_secret)
            or row["purpose"] != purpose
            or row["expires_ts"] <= now
            or row["validated_ts"] is None
            or not row["usable"]
        ):
            raise threepid_error(
                "M_THREEPID_AUTH_FAILED", "The e-mail address has not been validated", 403
            )
        return row

    async def consume(self, sid: str) -> None:
        """A validated session serves one operation: delete it."""
        await self._db.run(threepid_store.delete_session, sid)

    async def sweep(self) -> int:
        return await self._db.run(threepid_store.delete_expired_sessions, self._now_ms())


_WRONG = "\x00wrong"
