"""Profiles (client-server "Profiles", profile.yaml).

``GET /profile/{userId}``, ``GET/PUT/DELETE /profile/{userId}/{keyName}``.  Rules:
(1) only local users have profiles here (others: asked over federation when
``accounts.remote_profiles`` is set, node/federation/remote/profile.py); (2) a user changes only
their own profile (403 ``M_FORBIDDEN``); (3) the PUT body must contain ``keyName``
(``M_MISSING_PARAM``); field rules live in ``profile_rules``; (4) a change is announced to the
profile listeners (rooms update the user's member events); (5) ``org.parta.role`` is the
server's, never the user's: it shows the verified role attestation (``attestations.py``) and
cannot be set or removed (403 ``M_FORBIDDEN``).
"""

from __future__ import annotations

from typing import Any

from federation.errors import Forbidden, NotFound

from ...http.request import MissingParam
from ..attestations import ROLE_FIELD
from ..ids import MAX_USER_ID_BYTES
from ..profile_rules import check_key, check_value
from ._common import CLIENT_V3, check_text


def register(router: Any, accounts: Any) -> None:
    async def _profile(user_id: str) -> dict:
        check_text(user_id, "userId", max_bytes=MAX_USER_ID_BYTES)
        remote = accounts.remote_profiles  # None unless federating
        roles = accounts.attestations
        if remote is not None and remote.is_remote(user_id):
            profile = await remote.get_profile(user_id)
            role = await roles.remote_field(user_id)  # rule 5
        else:
            profile = await accounts.get_profile_or_none(user_id)  # rule 1
            if profile is None:
                raise NotFound("Profile not found")
            role = await roles.local_view(user_id)
        profile.pop(ROLE_FIELD, None)
        if role is not None:
            profile[ROLE_FIELD] = role
        return profile

    async def get_profile(req: Any, userId: str) -> tuple[int, dict]:
        return 200, await _profile(userId)

    async def get_field(req: Any, userId: str, keyName: str) -> tuple[int, dict]:
        check_key(keyName)
        profile = await _profile(userId)
        if keyName not in profile:
            raise NotFound("Profile field not set")
        return 200, {keyName: profile[keyName]}

    async def put_field(req: Any, userId: str, keyName: str) -> tuple[int, dict]:
        if userId != req.user_id:  # rule 2
            raise Forbidden("You may only change your own profile")
        check_key(keyName)
        if keyName == ROLE_FIELD:  # rule 5
            raise Forbidden("The school's server sets org.parta.role")
        body = req.json()
        if keyName not in body:  # rule 3
            raise MissingParam(f"Missing '{keyName}'")
        check_value(keyName, body[keyName])
        await accounts.update_profile(userId, {keyName: body[keyName]})  # rule 4
        return 200, {}

    async def delete_field(req: Any, userId: str, keyName: str) -> tuple[int, dict]:
        if userId != req.user_id:
            raise Forbidden("You may only change your own profile")
        check_key(keyName)
        if keyName == ROLE_FIELD:
            raise Forbidden("The school's server sets org.parta.role")
        await accounts.update_profile(userId, {}, removals=[keyName])
        return 200, {}

    base = CLIENT_V3 + "/profile/{userId}"
    router.add("GET", base, get_profile, auth=False, auth_optional=True)
    router.add("GET", base + "/{keyName}", get_field, auth=False, auth_optional=True)
    router.add("PUT", base + "/{keyName}", put_field)
    router.add("DELETE", base + "/{keyName}", delete_field)
