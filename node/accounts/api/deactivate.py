"""``POST /account/deactivate`` (client-server "Account deactivation",
account_deactivation.yaml).

Rules: (1) UIA with ``m.login.password`` for the account, with or without an access token
(with one, the identifier must name the token's user), rate limited like every password
check; (2) ``erase`` (default false) must be a boolean, ``id_server`` a string if given --
it is otherwise ignored: this node binds no third-party identifiers at identity servers, so
there is nothing to unbind and the answer is ``id_server_unbind_result: success`` (the spec:
"This must be ``success`` if the homeserver has no identifiers to unbind"); the account's
contact addresses are removed, so they can be used again; (3) what deactivation does is
``node/accounts/deactivation.py``.
"""

from __future__ import annotations

from typing import Any

from .. import threepid_store
from ..uia import PASSWORD
from ._common import CLIENT_V3, opt_bool, opt_str
from ._stages import password_stage


def register(router: Any, accounts: Any) -> None:
    handlers = {PASSWORD: password_stage(accounts)}

    async def deactivate(req: Any) -> tuple[int, dict]:
        body = req.json()
        erase = opt_bool(body, "erase", False)  # rule 2
        opt_str(body, "id_server")
        requester = req.requester
        session = await accounts.uia.authenticate(  # rule 1
            "deactivate",
            body.get("auth"),
            [[PASSWORD]],
            handlers,
            user_id=requester.user_id if requester else None,
            client_ip=req.client_ip,
        )
        user_id = requester.user_id if requester else session.data["user_id"]
        accounts.uia.finish(session)
        await accounts.db.run(threepid_store.delete_user_threepids, user_id)  # rule 2
        await accounts.deactivate(user_id, erase=erase)  # rule 3
        return 200, {"id_server_unbind_result": "success"}

    router.add(
        "POST", CLIENT_V3 + "/account/deactivate", deactivate, auth=False, auth_optional=True
    )
