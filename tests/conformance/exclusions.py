"""The client-server operations the node leaves out, with the reason.

Read by the conformance walk (``tests/e2e/test_e2e_spec_conformance.py``) and by
``write_coverage_doc.py``, which writes ``docs/spec-coverage.md``.
"""

from __future__ import annotations

_SMS = (
    "No SMS gateway: the node validates phone numbers nowhere, so it answers 400 "
    "`M_THREEPID_MEDIUM_NOT_SUPPORTED` instead of sending a code."
)
_SSO = (
    "Single sign-on with OpenID Connect providers is built with the school's identity work; "
    "`GET /login` does not advertise `m.login.sso` until then."
)
_AS = "Application services (bridges) are built with the bridges; no appservice is registered yet."

EXCLUDED: dict[tuple[str, str], str] = {
    ("POST", "/_matrix/client/v3/account/3pid/msisdn/requestToken"): _SMS,
    ("POST", "/_matrix/client/v3/register/msisdn/requestToken"): _SMS,
    ("POST", "/_matrix/client/v3/account/password/msisdn/requestToken"): _SMS,
    ("GET", "/_matrix/client/v3/login/sso/redirect"): _SSO,
    ("GET", "/_matrix/client/v3/login/sso/redirect/{idpId}"): _SSO,
    ("POST", "/_matrix/client/v1/appservice/{appserviceId}/ping"): _AS,
    ("PUT", "/_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}"): _AS,
}
