"""UIA stage handlers ("Authentication types"): password, dummy, registration token,
e-mail identity."""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

from .. import threepid_store
from ..service import UserDeactivated
from ..uia import DUMMY, EMAIL_IDENTITY, PASSWORD, REGISTRATION_TOKEN, StageFailed, UiaSession
from ._common import login_identifier


async def dummy_stage(session: UiaSession, auth: dict) -> None:
    """``m.login.dummy`` always succeeds."""


def password_stage(accounts: Any):
    """``m.login.password``: the identifier must name the session's user (if bound) and the
    password must match.  The authenticated user is left in ``session.data["user_id"]``.

    Each attempt counts like a /login attempt and goes through the same lockout
    (``accounts.guard``, ``verify_password``): 429 ``M_LIMIT_EXCEEDED`` when exhausted."""

    async def stage(session: UiaSession, auth: dict) -> None:
        accounts.guard.attempt(session.client_ip)
        try:
            identifier = login_identifier(auth)
        except MatrixError as exc:
            raise StageFailed(exc.message, exc.errcode) from None
        password = auth.get("password")
        if not isinstance(password, str):
            raise StageFailed("Missing password", "M_MISSING_PARAM")
        user_id = await accounts.resolve_login_user(identifier)
        if user_id is not None and session.user_id is not None and user_id != session.user_id:
            raise StageFailed("Invalid password")
        try:
            ok = await accounts.verify_password(user_id, password, session.client_ip)
        except UserDeactivated:
            ok = False
        if not ok:
            raise StageFailed("Invalid password")
        session.data["user_id"] = user_id

    return stage


def registration_token_stage(accounts: Any):
    """``m.login.registration_token``: the token must be valid now; nothing is reserved.

    A use is counted only when the registration completes (``create_user`` takes it in the
    account's own transaction and refuses when none is left), so a client that stops after
    this stage cannot block a single-use token.  Failed tokens count toward the client
    address's lockout (``accounts.guard``), like failed passwords.  The token goes in
    ``token`` (spec); ``registration_token`` is accepted as well because some clients'
    documentation uses that name.
    """

    async def stage(session: UiaSession, auth: dict) -> None:
        token = auth.get("token", auth.get("registration_token"))
        if not isinstance(token, str) or not token:
            raise StageFailed("Missing registration token", "M_MISSING_PARAM")
        row = await accounts.check_registration_token(token, session.client_ip)
        if row is None:
            raise StageFailed("Invalid registration token", "M_FORBIDDEN")
        session.data["registration_token"] = token
        session.data["role"] = row["role"]

    return stage


def email_identity_stage(accounts: Any, purpose: str):
    """``m.login.email.identity`` ("Email-based (identity / homeserver)"): ``threepid_creds``
    names a validation session this node validated for ``purpose`` (``register`` or
    ``password``; ``id_server`` is ignored).  The address is left in
    ``session.data["threepid"]``; for ``password`` the account using the address becomes
    ``session.data["user_id"]`` (with an access token it must be the token's user), and for
    ``register`` the address must still be free.  Attempts count toward the client address's
    login rate (``accounts.guard``)."""

    async def stage(session: UiaSession, auth: dict) -> None:
        accounts.guard.attempt(session.client_ip)
        creds = auth.get("threepid_creds", auth.get("threepidCreds"))
        if not isinstance(creds, dict):
            raise StageFailed("Missing 'threepid_creds'", "M_MISSING_PARAM")
        try:
            row = await accounts.threepid_sessions.validated(
                creds.get("sid"), creds.get("client_secret"), purpose
            )
        except MatrixError as exc:
            raise StageFailed(exc.message, exc.errcode) from None
        owner = await accounts.db.run(threepid_store.threepid_owner, row["medium"], row["address"])
        if purpose == "password":
            if owner is None or (session.user_id is not None and owner != session.user_id):
                raise StageFailed("No account uses this address", "M_THREEPID_AUTH_FAILED")
            session.data["user_id"] = owner
        elif owner is not None:
            raise StageFailed("This address is used by another account", "M_THREEPID_IN_USE")
        session.data["threepid"] = {
            "medium": row["medium"],
            "address": row["address"],
            "validated_at": row["validated_ts"],
            "sid": row["session_id"],
        }

    return stage


STAGES = (DUMMY, PASSWORD, REGISTRATION_TOKEN, EMAIL_IDENTITY)
