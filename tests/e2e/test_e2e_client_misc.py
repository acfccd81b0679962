"""E2E: the small client-server operations on one real node (SQLite), driven by matrix-nio
and plain HTTP as clients call them: r0 paths, room tags through /sync, OpenID tokens
checked on the federation listener, TURN credentials accepted by a real coturn, reports
reaching a director, asynchronous media uploads, and the discovery documents.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from nio import (
    GetOpenIDTokenResponse,
    InviteMemberEvent,
    JoinResponse,
    RoomMessagesResponse,
    SyncResponse,
    TagEvent,
)

from e2e_helpers import DEFAULT_PASSWORD, api, create_room_with, free_port, http_request, run, text

pytestmark = pytest.mark.e2e

IN_CI = os.environ.get("CI", "").lower() == "true"
TURN_SECRET = "e2e-turn-secret"


@pytest.fixture(scope="module")
def db_backend() -> str:
    return "sqlite"  # nothing here differs by backend; the unit tests cover the SQL


@pytest.fixture(scope="module")
def turn_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int | None]:
    """A coturn ``turnserver`` on loopback with the TURN REST API shared secret (None when
    coturn is missing outside CI: the TURN test skips; CI installs it)."""
    if shutil.which("turnserver") is None or shutil.which("turnutils_uclient") is None:
        if IN_CI:
            pytest.fail("coturn is not installed (deploy/dev/test-deps.sh installs it)")
        yield None
        return
    port = free_port()
    log = open(tmp_path_factory.mktemp("coturn") / "turnserver.log", "wb")
    proc = subprocess.Popen(
        [
            "turnserver",
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--use-auth-secret",
            f"--static-auth-secret={TURN_SECRET}",
            "--realm=e2e.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--log-file=stdout",
            "--simple-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # start-up only; the test's own check is the client's allocation
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def node(node_factory: Any, turn_port: int | None) -> Any:
    uris = [f"turn:127.0.0.1:{turn_port or 3478}?transport=udp"]
    return node_factory(
        voip={"turn_uris": uris, "turn_shared_secret": TURN_SECRET, "turn_user_lifetime_s": 600},
        support={"contacts": [{"email_address": "it@school.test", "role": "m.role.admin"}]},
        # Previews may reach the test's web server on 127.0.0.1 only, nothing else local.
        media={"url_previews": True, "url_preview_ip_range_whitelist": ["127.0.0.1/32"]},
    )


def test_r0_login_and_sync(node):
    user_id, password = node.new_user("legacy")
    status, body = api(
        node,
        "POST",
        "/_matrix/client/r0/login",
        json_body={"type": "m.login.password", "user": user_id, "password": password},
    )
    assert status == 200 and body["user_id"] == user_id
    status, sync = api(node, "GET", "/_matrix/client/r0/sync", token=body["access_token"])
    assert status == 200 and "next_batch" in sync
    # Operations the spec added after r0 are not there.
    status, err = api(node, "POST", "/_matrix/client/r0/knock/!x:y", token=body["access_token"])
    assert (status, err["errcode"]) == (404, "M_UNRECOGNIZED")


def test_tags_reach_the_clients_sync(node):
    async def scenario() -> None:
        anna = await node.new_client("tagger")
        try:
            room_id = (await anna.room_create(name="Mathe")).room_id
            first = await anna.sync(timeout=0)
            assert isinstance(first, SyncResponse)
            path = f"/_matrix/client/v3/user/{anna.user_id}/rooms/{room_id}/tags/m.favourite"
            assert api(node, "PUT", path, token=anna.access_token, json_body={"order": 0.5}) == (
                200,
                {},
            )
            resp = await anna.sync(timeout=3000)
            assert isinstance(resp, SyncResponse)
            tags = [e for e in resp.rooms.join[room_id].account_data if isinstance(e, TagEvent)]
            assert tags and tags[-1].tags == {"m.favourite": {"order": 0.5}}
        finally:
            await anna.close()

    run(scenario())


def test_openid_token_is_checked_on_the_federation_listener(node):
    async def scenario() -> tuple[str, str, str]:
        anna = await node.new_client("openid")
        try:
            resp = await anna.get_openid_token(anna.user_id)
            assert isinstance(resp, GetOpenIDTokenResponse), resp
            return resp.access_token, resp.matrix_server_name, anna.user_id
        finally:
            await anna.close()

    token, server_name, user_id = run(scenario())
    assert server_name == node.server_name
    fed = node.config["federation"]["listener"]["port"]
    base = f"https://127.0.0.1:{fed}/_matrix/federation/v1/openid/userinfo?access_token="
    unverified = ssl._create_unverified_context()  # the dev node's self-signed certificate

    def userinfo(tok: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(base + tok, context=unverified, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    assert userinfo(token) == (200, {"sub": user_id})
    status, err = userinfo("not-a-token")
    assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")


def test_turn_credentials_are_accepted_by_coturn(node, turn_port):
    if turn_port is None:
        pytest.skip("coturn not installed (make test installs it)")
    token = node.register(f"caller{int(time.time() * 1000)}")["access_token"]
    status, creds = api(node, "GET", "/_matrix/client/v3/voip/turnServer", token=token)
    assert status == 200 and creds["ttl"] == 600
    assert creds["uris"] == [f"turn:127.0.0.1:{turn_port}?transport=udp"]

    def allocate(password: str) -> subprocess.CompletedProcess:
        cmd = ["turnutils_uclient", "-y", "-n", "1", "-m", "1", "-l", "50"]
        cmd += ["-u", creds["username"], "-w", password, "-p", str(turn_port), "127.0.0.1"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    ok = allocate(creds["password"])
    assert ok.returncode == 0, ok.stdout[-2000:]
    refused = allocate("not-the-password")
    assert refused.returncode != 0 and "Cannot complete Allocation" in refused.stdout


def test_a_report_reaches_the_director(node):
    director_id = node.add_user("direktorin", role="director")

    async def scenario() -> None:
        anna = await node.new_client("reporter")
        ben = await node.new_client("offender")
        director = await node.login(director_id, DEFAULT_PASSWORD)
        try:
            room_id = await create_room_with(anna, ben, name="7B")
            sent = await ben.room_send(room_id, "m.room.message", text("rude words"))
            path = f"/_matrix/client/v3/rooms/{room_id}/report/{sent.event_id}"
            body = {"reason": "rude"}
            assert api(node, "POST", path, token=anna.access_token, json_body=body) == (200, {})
            # Not joined: the same 404 as an unknown event.
            carl = await node.new_client("outsider")
            status, err = api(node, "POST", path, token=carl.access_token, json_body={})
            assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
            await carl.close()

            invited = None
            for _ in range(10):
                resp = await director.sync(timeout=2000)
                assert isinstance(resp, SyncResponse)
                for rid, info in resp.rooms.invite.items():
                    if any(isinstance(e, InviteMemberEvent) for e in info.invite_state):
                        invited = rid
                if invited:
                    break
            assert invited is not None, "the director was not invited to the reports room"
            assert isinstance(await director.join(invited), JoinResponse)
            msgs = await director.room_messages(invited, start="", limit=20)
            assert isinstance(msgs, RoomMessagesResponse), msgs
            bodies = [getattr(e, "body", "") for e in msgs.chunk]
            assert any(sent.event_id in b and "rude words" in b for b in bodies), bodies
        finally:
            for c in (anna, ben, director):
                await c.close()

    run(scenario())
    status, _, metrics = http_request("GET", node.metrics_url + "/metrics")
    assert status == 200 and b'parta_reports_total{kind="event"} 1.0' in metrics


def test_async_upload_and_discovery(node):
    token = node.register(f"uploader{int(time.time() * 1000)}")["access_token"]
    status, created = api(node, "POST", "/_matrix/media/v1/create", token=token, json_body={})
    assert status == 200
    server, media_id = created["content_uri"][len("mxc://") :].split("/")
    download = f"/_matrix/client/v1/media/download/{server}/{media_id}"
    status, err = api(node, "GET", download + "?timeout_ms=0", token=token)
    assert (status, err["errcode"]) == (504, "M_NOT_YET_UPLOADED")
    put = f"/_matrix/media/v3/upload/{server}/{media_id}"
    headers = {"Content-Type": "text/plain"}
    assert api(node, "PUT", put, token=token, raw_body=b"hello", headers=headers) == (200, {})
    status, err = api(node, "PUT", put, token=token, raw_body=b"again", headers=headers)
    assert (status, err["errcode"]) == (409, "M_CANNOT_OVERWRITE_MEDIA")
    assert api(node, "GET", download, token=token) == (200, b"hello")
    # Deprecated unauthenticated download: frozen.
    status, err = api(node, "GET", f"/_matrix/media/v3/download/{server}/{media_id}")
    assert (status, err["errcode"]) == (404, "M_NOT_FOUND")

    assert api(node, "GET", "/.well-known/matrix/support") == (
        200,
        {"contacts": [{"email_address": "it@school.test", "role": "m.role.admin"}]},
    )
    status, err = api(node, "GET", "/_matrix/client/v1/auth_metadata")
    assert (status, err["errcode"]) == (404, "M_UNRECOGNIZED")
    assert api(node, "GET", "/_matrix/client/v3/thirdparty/protocols", token=token) == (200, {})


class _Site(BaseHTTPRequestHandler):
    """A page with Open Graph tags, and a redirect to a host previews may not reach."""

    hits: list[str] = []
    other_port = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Site.hits.append(f"{self.server.server_address[0]} {self.path}")
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.2:{_Site.other_port}/private")
            self.end_headers()
            return
        body = (
            b"<html><head><title>Wien</title>"
            b'<meta property="og:title" content="Klassenfahrt nach Wien"></head></html>'
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def test_url_previews_reach_allowed_pages_only(node):
    public = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    private = ThreadingHTTPServer(("127.0.0.2", 0), _Site)  # refused: not whitelisted
    _Site.other_port = private.server_address[1]
    for server in (public, private):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        token = node.register(f"previewer{int(time.time() * 1000)}")["access_token"]
        base = f"http://127.0.0.1:{public.server_address[1]}"

        def preview(url: str) -> tuple[int, Any]:
            path = "/_matrix/client/v1/media/preview_url?url=" + urllib.request.quote(url, "")
            return api(node, "GET", path, token=token)

        status, body = preview(base + "/page")
        assert status == 200 and body["og:title"] == "Klassenfahrt nach Wien", body
        for refused in (
            base + "/redirect",  # to 127.0.0.2
            f"http://127.0.0.2:{_Site.other_port}/private",
            f"http://[::1]:{public.server_address[1]}/page",  # loopback, not whitelisted
        ):
            status, err = preview(refused)
            assert (status, err["errcode"]) == (404, "M_NOT_FOUND"), refused
        assert not any(h.startswith("127.0.0.2") for h in _Site.hits), _Site.hits
    finally:
        for server in (public, private):
            server.shutdown()
            server.server_close()
