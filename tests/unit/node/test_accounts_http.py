"""Accounts endpoints over real HTTP against a node subprocess on a loopback port.

Covers login, tokens, registration (token flow, open registration off), password change,
devices, profile, capabilities/versions/well-known, error codes and rate limiting.
"""

from __future__ import annotations

import pytest

from accounts_node import PASSWORD, NodeProcess

V3 = "/_matrix/client/v3"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = NodeProcess(str(tmp_path_factory.mktemp("accounts-node")), rate_limits={"enabled": False})
    yield n
    assert n.stop() == 0, n.read_log()


def _register(node, username, token, password=PASSWORD, **extra):
    """The UIA dance: first call (401 + session), token stage, then dummy stage."""
    status, body = node.request(
        "POST", V3 + "/register", {"username": username, "password": password, **extra}
    )
    assert status == 401, body
    session = body["session"]
    status, body = node.request(
        "POST",
        V3 + "/register",
        {
            "username": username,
            "password": password,
            **extra,
            "auth": {"type": "m.login.registration_token", "token": token, "session": session},
        },
    )
    if status != 401 or "errcode" in body:
        return status, body
    assert body["completed"] == ["m.login.registration_token"]
    return node.request(
        "POST",
        V3 + "/register",
        {
            "username": username,
            "password": password,
            **extra,
            "auth": {"type": "m.login.dummy", "session": session},
        },
    )


# --- discovery -------------------------------------------------------------------------------
def test_versions_wellknown_health(node):
    status, body = node.request("GET", "/_matrix/client/versions")
    assert status == 200 and "v1.1" in body["versions"] and "v1.12" in body["versions"]
    assert "r0.6.1" in body["versions"]  # r0 paths are served too
    status, body = node.request("GET", "/.well-known/matrix/client")
    assert status == 200
    assert body["m.homeserver"]["base_url"].rstrip("/") == node.base_url
    assert node.request("GET", "/health") == (200, {"status": "ok"})
    assert node.request("GET", "/health", base=node.metrics_url)[0] == 200


def test_capabilities(node):
    node.add_user("cap")
    token = node.login("cap")["access_token"]
    status, body = node.request("GET", V3 + "/capabilities", token=token)
    caps = body["capabilities"]
    assert status == 200
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.room_versions"]["default"] == "12"
    assert set(caps["m.room_versions"]["available"]) == {"10", "11", "12"}
    assert caps["m.set_displayname"]["enabled"] and caps["m.set_avatar_url"]["enabled"]
    assert caps["m.3pid_changes"] == {"enabled": False}


# --- login -----------------------------------------------------------------------------------
def test_login_flows_and_success(node):
    assert node.request("GET", V3 + "/login") == (
        200,
        {
            "flows": [
                {"type": "m.login.password"},
                {"type": "m.login.token", "get_login_token": True},
            ]
        },
    )
    user_id = node.add_user("alice", display_name="Alice")
    body = node.login("alice", initial_device_display_name="Phone")
    assert body["user_id"] == user_id
    assert body["access_token"] and body["device_id"]
    assert body["well_known"]["m.homeserver"]["base_url"]
    status, who = node.request("GET", V3 + "/account/whoami", token=body["access_token"])
    assert status == 200
    assert who == {"user_id": user_id, "device_id": body["device_id"], "is_guest": False}
    # Full user ID, legacy "user" field and a client-chosen device ID work too.
    status, legacy = node.request(
        "POST",
        V3 + "/login",
        {
            "type": "m.login.password",
            "user": user_id,
            "password": PASSWORD,
            "device_id": "MYDEVICE",
        },
    )
    assert status == 200 and legacy["device_id"] == "MYDEVICE"


def test_login_failures(node):
    node.add_user("bob")
    for user, password in (("bob", "wrong password"), ("nobody", PASSWORD)):
        status, body = node.request(
            "POST",
            V3 + "/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
            },
        )
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = node.request("POST", V3 + "/login", {"type": "m.login.sso", "token": "x"})
    assert (status, body["errcode"]) == (400, "M_UNKNOWN")
    status, body = node.request("POST", V3 + "/login", {"type": "m.login.token", "token": "x"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = node.request("POST", V3 + "/login", raw=b"{not json")
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    status, body = node.request("POST", V3 + "/login", raw=b"[1, 2]")
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


def test_token_errors(node):
    status, body = node.request("GET", V3 + "/account/whoami")
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
    status, body = node.request("GET", V3 + "/account/whoami", token="pat_bogus")
    assert (status, body["errcode"], body["soft_logout"]) == (401, "M_UNKNOWN_TOKEN", False)


def test_logout_and_logout_all(node):
    node.add_user("carl")
    first = node.login("carl")["access_token"]
    second = node.login("carl")["access_token"]
    assert node.request("POST", V3 + "/logout", {}, token=first) == (200, {})
    assert node.request("GET", V3 + "/account/whoami", token=first)[0] == 401
    assert node.request("GET", V3 + "/account/whoami", token=second)[0] == 200
    third = node.login("carl")["access_token"]
    assert node.request("POST", V3 + "/logout/all", {}, token=second) == (200, {})
    for token in (second, third):
        status, body = node.request("GET", V3 + "/account/whoami", token=token)
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    # logout deleted the devices too
    fresh = node.login("carl")
    status, devices = node.request("GET", V3 + "/devices", token=fresh["access_token"])
    assert [d["device_id"] for d in devices["devices"]] == [fresh["device_id"]]


# --- registration ----------------------------------------------------------------------------
def test_open_registration_off_by_default(node):
    status, body = node.request(
        "POST",
        V3 + "/register",
        {"username": "intruder", "password": PASSWORD, "auth": {"type": "m.login.dummy"}},
    )
    assert status == 401
    assert body["flows"] == [{"stages": ["m.login.registration_token", "m.login.dummy"]}]
    # dummy alone completes no offered flow: still 401, no account
    assert body["completed"] == ["m.login.dummy"] and "user_id" not in body
    status, body = node.request(
        "POST",
        V3 + "/login",
        {"type": "m.login.password", "user": "intruder", "password": PASSWORD},
    )
    assert status == 403


def test_registration_token_flow(node):
    token = node.token("--uses", "1", "--role", "parent")
    assert node.request(
        "GET", f"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}"
    ) == (200, {"valid": True})
    assert node.request("GET", V3 + "/register/available?username=dora") == (
        200,
        {"available": True},
    )
    status, body = _register(node, "dora", token, initial_device_display_name="Laptop")
    assert status == 200, body
    assert body["user_id"] == f"@dora:{node.server_name}"
    who = node.request("GET", V3 + "/account/whoami", token=body["access_token"])[1]
    assert who["user_id"] == body["user_id"] and who["device_id"] == body["device_id"]
    # The single use is spent: the token is no longer valid, a second registration fails.
    assert node.request(
        "GET", f"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}"
    ) == (200, {"valid": False})
    status, body = _register(node, "erik", token)
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    # Username checks happen before UIA.
    status, body = node.request(
        "POST", V3 + "/register", {"username": "dora", "password": PASSWORD}
    )
    assert (status, body["errcode"]) == (400, "M_USER_IN_USE")
    status, body = node.request("GET", V3 + "/register/available?username=dora")
    assert (status, body["errcode"]) == (400, "M_USER_IN_USE")
    status, body = node.request(
        "POST", V3 + "/register", {"username": "Bad Name!", "password": PASSWORD}
    )
    assert (status, body["errcode"]) == (400, "M_INVALID_USERNAME")
    status, body = node.request(
        "POST", V3 + "/register", {"username": "shorty", "password": "short"}
    )
    assert (status, body["errcode"]) == (400, "M_WEAK_PASSWORD")
    status, body = node.request("POST", V3 + "/register?kind=guest", {})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


def test_registration_unknown_token_and_session(node):
    status, body = _register(node, "fritz", "no-such-token")
    assert status == 401 and body["errcode"] == "M_FORBIDDEN"
    assert "completed" not in body
    status, body = node.request(
        "POST",
        V3 + "/register",
        {
            "username": "fritz",
            "password": PASSWORD,
            "auth": {"type": "m.login.dummy", "session": "not-a-session"},
        },
    )
    assert status == 400


# --- password --------------------------------------------------------------------------------
def test_password_change_logs_out_other_devices(node):
    node.add_user("gina")
    keep = node.login("gina")
    other = node.login("gina")
    body = {"new_password": "a brand new password", "logout_devices": True}
    status, uia = node.request("POST", V3 + "/account/password", body, token=keep["access_token"])
    assert status == 401 and uia["flows"] == [{"stages": ["m.login.password"]}]
    wrong = {
        "type": "m.login.password",
        "session": uia["session"],
        "password": "nope",
        "identifier": {"type": "m.id.user", "user": "gina"},
    }
    status, failed = node.request(
        "POST", V3 + "/account/password", {**body, "auth": wrong}, token=keep["access_token"]
    )
    assert (status, failed["errcode"]) == (401, "M_FORBIDDEN")
    auth = dict(wrong, password=PASSWORD)
    assert node.request(
        "POST", V3 + "/account/password", {**body, "auth": auth}, token=keep["access_token"]
    ) == (200, {})
    assert node.request("GET", V3 + "/account/whoami", token=keep["access_token"])[0] == 200
    status, gone = node.request("GET", V3 + "/account/whoami", token=other["access_token"])
    assert (status, gone["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, _ = node.request(
        "POST", V3 + "/login", {"type": "m.login.password", "user": "gina", "password": PASSWORD}
    )
    assert status == 403
    node.login("gina", password="a brand new password")


def test_password_change_other_user_identifier_refused(node):
    node.add_user("hans")
    node.add_user("ines")
    token = node.login("hans")["access_token"]
    body = {"new_password": "another password"}
    session = node.request("POST", V3 + "/account/password", body, token=token)[1]["session"]
    status, resp = node.request(
        "POST",
        V3 + "/account/password",
        {
            **body,
            "auth": {
                "type": "m.login.password",
                "session": session,
                "password": PASSWORD,
                "identifier": {"type": "m.id.user", "user": "ines"},
            },
        },
        token=token,
    )
    assert (status, resp["errcode"]) == (401, "M_FORBIDDEN")


# --- devices ---------------------------------------------------------------------------------
def test_devices_crud(node):
    node.add_user("jana")
    a = node.login("jana", initial_device_display_name="Phone")
    b = node.login("jana", initial_device_display_name="Laptop")
    token = a["access_token"]
    status, body = node.request("GET", V3 + "/devices", token=token)
    assert status == 200
    names = {d["device_id"]: d.get("display_name") for d in body["devices"]}
    assert names == {a["device_id"]: "Phone", b["device_id"]: "Laptop"}
    assert all("last_seen_ts" in d for d in body["devices"])
    status, dev = node.request("GET", V3 + f"/devices/{b['device_id']}", token=token)
    assert status == 200 and dev["display_name"] == "Laptop"
    assert node.request(
        "PUT", V3 + f"/devices/{b['device_id']}", {"display_name": "Old laptop"}, token=token
    ) == (200, {})
    assert (
        node.request("GET", V3 + f"/devices/{b['device_id']}", token=token)[1]["display_name"]
        == "Old laptop"
    )
    status, body = node.request("GET", V3 + "/devices/NOPE", token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = node.request("PUT", V3 + "/devices/NOPE", {"display_name": "x"}, token=token)
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    # Delete needs UIA with the password.
    status, uia = node.request("DELETE", V3 + f"/devices/{b['device_id']}", {}, token=token)
    assert status == 401 and uia["flows"] == [{"stages": ["m.login.password"]}]
    auth = {
        "type": "m.login.password",
        "session": uia["session"],
        "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": f"@jana:{node.server_name}"},
    }
    assert node.request(
        "DELETE", V3 + f"/devices/{b['device_id']}", {"auth": auth}, token=token
    ) == (200, {})
    assert node.request("GET", V3 + "/account/whoami", token=b["access_token"])[0] == 401
    ids = [d["device_id"] for d in node.request("GET", V3 + "/devices", token=token)[1]["devices"]]
    assert ids == [a["device_id"]]


def test_delete_devices_bulk(node):
    node.add_user("kurt")
    a, b, c = (node.login("kurt") for _ in range(3))
    token = a["access_token"]
    body = {"devices": [b["device_id"], c["device_id"]]}
    session = node.request("POST", V3 + "/delete_devices", body, token=token)[1]["session"]
    auth = {
        "type": "m.login.password",
        "session": session,
        "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": "kurt"},
    }
    assert node.request("POST", V3 + "/delete_devices", {**body, "auth": auth}, token=token) == (
        200,
        {},
    )
    for gone in (b, c):
        assert node.request("GET", V3 + "/account/whoami", token=gone["access_token"])[0] == 401


# --- profile ---------------------------------------------------------------------------------
def test_profile(node):
    user_id = node.add_user("lara", display_name="Lara L")
    token = node.login("lara")["access_token"]
    assert node.request("GET", V3 + f"/profile/{user_id}") == (200, {"displayname": "Lara L"})
    assert node.request(
        "PUT", V3 + f"/profile/{user_id}/displayname", {"displayname": "Lara Lang"}, token=token
    ) == (200, {})
    assert node.request(
        "PUT",
        V3 + f"/profile/{user_id}/avatar_url",
        {"avatar_url": "mxc://school.test/abc"},
        token=token,
    ) == (200, {})
    assert node.request("GET", V3 + f"/profile/{user_id}/displayname") == (
        200,
        {"displayname": "Lara Lang"},
    )
    assert node.request("GET", V3 + f"/profile/{user_id}") == (
        200,
        {"displayname": "Lara Lang", "avatar_url": "mxc://school.test/abc"},
    )
    status, body = node.request(
        "PUT",
        V3 + f"/profile/{user_id}/avatar_url",
        {"avatar_url": "https://evil.example/x.png"},
        token=token,
    )
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = node.request("PUT", V3 + f"/profile/{user_id}/displayname", {}, token=token)
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    other = node.add_user("mona")
    status, body = node.request(
        "PUT", V3 + f"/profile/{other}/displayname", {"displayname": "hacked"}, token=token
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = node.request("GET", V3 + f"/profile/@ghost:{node.server_name}")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert node.request("DELETE", V3 + f"/profile/{user_id}/avatar_url", token=token) == (200, {})
    assert node.request("GET", V3 + f"/profile/{user_id}") == (200, {"displayname": "Lara Lang"})


def test_metrics_count_requests(node):
    node.request("GET", "/_matrix/client/versions")
    status, text = node.request("GET", "/metrics", base=node.metrics_url)
    assert status == 200
    assert (
        'parta_http_requests_total{method="GET",route="/_matrix/client/versions",'
        'status="200"}' in text
    )
    assert "parta_http_request_seconds_bucket" in text
    assert "parta_db_pool_threads_max" in text


def test_no_secrets_in_log(node):
    node.add_user("nina", password="very secret words")
    body = node.login("nina", password="very secret words")
    node.request("GET", V3 + "/account/whoami?access_token=" + body["access_token"])
    log = node.read_log()
    assert "very secret words" not in log
    assert body["access_token"] not in log


# --- rate limiting ---------------------------------------------------------------------------
def test_rate_limited_login_gives_429(tmp_path):
    n = NodeProcess(str(tmp_path), rate_limits={"login_per_second": 0.01, "login_burst_count": 3})
    try:
        statuses = []
        for _ in range(5):
            status, body = n.request(
                "POST", V3 + "/login", {"type": "m.login.password", "user": "x", "password": "y"}
            )
            statuses.append(status)
        assert statuses[:3] == [403, 403, 403]
        assert statuses[3:] == [429, 429]
        assert body["errcode"] == "M_LIMIT_EXCEEDED"
        assert isinstance(body["retry_after_ms"], int) and body["retry_after_ms"] > 0
    finally:
        assert n.stop() == 0


def test_open_registration_switch(tmp_path):
    n = NodeProcess(str(tmp_path), registration={"open_registration": True})
    try:
        status, body = n.request(
            "POST", V3 + "/register", {"username": "olga", "password": PASSWORD}
        )
        assert status == 401
        assert {"stages": ["m.login.dummy"]} in body["flows"]
        # A client may send the dummy stage without first fetching a session.
        status, body = n.request(
            "POST",
            V3 + "/register",
            {"username": "olga", "password": PASSWORD, "auth": {"type": "m.login.dummy"}},
        )
        assert status == 200, body
        assert body["user_id"] == f"@olga:{n.server_name}" and body["access_token"]
        status, body = n.request(
            "POST",
            V3 + "/register",
            {"password": PASSWORD, "inhibit_login": True, "auth": {"type": "m.login.dummy"}},
        )
        assert status == 200 and "access_token" not in body
        assert body["user_id"].endswith(":" + n.server_name)
    finally:
        assert n.stop() == 0


def test_password_change_without_access_token(node):
    node.add_user("paul")
    a = node.login("paul")["access_token"]
    body = {"new_password": "paul's new password"}
    status, uia = node.request("POST", V3 + "/account/password", body)
    assert status == 401
    auth = {
        "type": "m.login.password",
        "session": uia["session"],
        "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": "paul"},
    }
    assert node.request("POST", V3 + "/account/password", {**body, "auth": auth}) == (200, {})
    assert node.request("GET", V3 + "/account/whoami", token=a)[0] == 401  # all devices out
    node.login("paul", password="paul's new password")


def test_per_user_rate_limit_on_marked_routes(tmp_path):
    n = NodeProcess(str(tmp_path), rate_limits={"per_second": 0.01, "burst_count": 2})
    try:
        n.add_user("quinn")
        n.add_user("rita")
        q = n.login("quinn")["access_token"]
        r = n.login("rita")["access_token"]
        statuses = [n.request("POST", V3 + "/createRoom", {}, token=q)[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        status, body = n.request("POST", V3 + "/createRoom", {}, token=q)
        assert (status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED")
        assert body["retry_after_ms"] > 0
        # Another user has their own bucket; unmarked routes are not limited.
        assert n.request("POST", V3 + "/createRoom", {}, token=r)[0] == 200
        assert all(n.request("GET", V3 + "/account/whoami", token=q)[0] == 200 for _ in range(5))
    finally:
        assert n.stop() == 0


def test_tls_listener(tmp_path):
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    n = NodeProcess(
        str(tmp_path / "node"),
        client_listener={
            "tls_certificate_path": str(cert_path),
            "tls_private_key_path": str(key_path),
        },
    )
    try:
        assert n.base_url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(cert_path))
        ctx.check_hostname = False
        import urllib.request

        with urllib.request.urlopen(
            n.base_url + "/_matrix/client/versions",  # noqa: S310 - loopback
            context=ctx,
            timeout=30,
        ) as resp:
            assert resp.status == 200 and b"v1.1" in resp.read()
    finally:
        assert n.stop() == 0


def test_device_last_seen_written_on_shutdown(tmp_path):
    import time

    from sqlalchemy import create_engine, select

    from schema.accounts import devices

    n = NodeProcess(str(tmp_path))
    try:
        n.add_user("sven")
        token = n.login("sven")["access_token"]
        time.sleep(0.05)
        assert n.request("GET", V3 + "/account/whoami", token=token)[0] == 200
    finally:
        assert n.stop() == 0
    engine = create_engine(f"sqlite:///{tmp_path}/node.db")
    with engine.connect() as conn:
        row = conn.execute(select(devices)).mappings().one()
    engine.dispose()
    assert row["last_seen_ip"] == "127.0.0.1"
    assert row["last_seen_ts"] > row["created_ts"]  # the whoami, flushed at shutdown
