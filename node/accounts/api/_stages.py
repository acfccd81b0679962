"""UIA stage handlers ("Authentication types"): password, dummy, registration token."""

from __future__ import annotations

from typing import Any

from federation.errors import MatrixError

from ..uia import DUMMY, PASSWORD, REGISTRATION_TOKEN, StageFailed, UiaSession
from ._common import login_identifier


async def dummy_stage(session: UiaSession, auth: dict) -> None:
    """``m.login.dummy`` always succeeds."""


def password_stage(accounts: Any):
    """``m.login.password``: the identifier must name the session's user (if bound) and the
    password must match.  The authenticated user is left in ``session.data["user_id"]``."""

    async def stage(session: UiaSession, auth: dict) -> None:
        try:
            identifier = login_identifier(auth)
        except MatrixError as exc:
            raise StageFailed(exc.message, exc.errcode) from None
        password = auth.get("password")
        if not isinstance(password, str):
            raise StageFailed("Missing password", "M_MISSING_PARAM")
        user_id = await accounts.resolve_login_user(identifier)
        if user_id is None or (session.user_id is not None and user_id != session.user_id):
            raise StageFailed("Invalid password")
        if not await accounts.check_password(user_id, password):
            raise StageFailed("Invalid password")
        session.data["user_id"] = user_id

    return stage


def registration_token_stage(accounts: Any):
    """``m.login.registration_token``: reserve one use of a valid token for this session.

    The token goes in ``token`` (spec); ``registration_token`` is accepted as well because
    some clients' documentation uses that name.
    """

    async def stage(session: UiaSession, auth: dict) -> None:
        token = auth.get("token", auth.get("registration_token"))
        if not isinstance(token, str) or not token:
            raise StageFailed("Missing registration token", "M_MISSING_PARAM")
        row = await accounts.reserve_registration_token(token)
        if row is None:
            raise StageFailed("Invalid registration token", "M_FORBIDDEN")
        session.data["registration_token"] = token
        session.data["role"] = row["role"]

    return stage


STAGES = (DUMMY, PASSWORD, REGISTRATION_TOKEN)
