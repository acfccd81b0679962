"""Push rules endpoints (client-server API "Push Rules: API", ``pushrules.yaml``,
https://spec.matrix.org/v1.16/client-server-api/#push-rules-api):

``GET /pushrules/``, ``GET /pushrules/global/``,
``GET/PUT/DELETE /pushrules/global/{kind}/{ruleId}``,
``GET/PUT /pushrules/global/{kind}/{ruleId}/enabled`` and ``.../actions``.

Only the caller's own rules are reachable (the path has no user).  Unknown kinds are 400
``M_INVALID_PARAM``; unknown rules 404 ``M_NOT_FOUND``; server-default rules can be
enabled, disabled and given other actions, never created or deleted.
"""

from __future__ import annotations

from typing import Any

from .. import ruleset as rs

V3 = "/_matrix/client/v3"
RULE = V3 + "/pushrules/global/{kind}/{ruleId}"


def register(router: Any, service: Any) -> None:
    store = service.rules

    async def get_all(req: Any) -> tuple[int, dict]:
        return 200, store.ruleset(req.user_id)

    async def get_global(req: Any) -> tuple[int, dict]:
        return 200, store.ruleset(req.user_id)["global"]

    async def get_rule(req: Any, kind: str, ruleId: str) -> tuple[int, dict]:
        return 200, rs.find_rule(store.document(req.user_id), req.user_id, kind, ruleId)

    async def put_rule(req: Any, kind: str, ruleId: str) -> tuple[int, dict]:
        rs.check_kind(kind)
        body = req.json()
        before, after = req.query("before"), req.query("after")
        await store.update(
            req.user_id, lambda doc: rs.put_rule(doc, kind, ruleId, body, before, after)
        )
        return 200, {}

    async def delete_rule(req: Any, kind: str, ruleId: str) -> tuple[int, dict]:
        await store.update(req.user_id, lambda doc: rs.delete_rule(doc, kind, ruleId))
        return 200, {}

    async def get_enabled(req: Any, kind: str, ruleId: str) -> tuple[int, dict]:
        rule = rs.find_rule(store.document(req.user_id), req.user_id, kind, ruleId)
        return 200, {"enabled": rule["enabled"]}

    async def put_enabled(req: Any, kind: str, ruleId: str) -> tuple[int, dict]:
        body = req.json()
        await store.update(req.user_id, lambda doc: rs.set_enabled(doc, kind, ruleId, body))
        return 200, {}

    async def get_actions(req: Any, kind: str, ruleId: str) -> tuple[int, dict]:
        rule = rs.find_rule(store.document(req.user_id), req.user_id, kind, ruleId)
        return 200, {"actions": rule["actions"]}

    async def put_actions(req: Any, kind: str, ruleId: str) -> tuple[int, dict]:
        body = req.json()
        await store.update(req.user_id, lambda doc: rs.set_actions(doc, kind, ruleId, body))
        return 200, {}

    router.add("GET", V3 + "/pushrules/", get_all)
    router.add("GET", V3 + "/pushrules", get_all)
    router.add("GET", V3 + "/pushrules/global/", get_global)
    router.add("GET", V3 + "/pushrules/global", get_global)
    router.add("GET", RULE, get_rule)
    router.add("PUT", RULE, put_rule, rate_limited=True)
    router.add("DELETE", RULE, delete_rule, rate_limited=True)
    router.add("GET", RULE + "/enabled", get_enabled)
    router.add("PUT", RULE + "/enabled", put_enabled, rate_limited=True)
    router.add("GET", RULE + "/actions", get_actions)
    router.add("PUT", RULE + "/actions", put_actions, rate_limited=True)
