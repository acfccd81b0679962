"""Asynchronous uploads (create, then PUT the content), downloads that wait for content,
and the deprecated ``/_matrix/media/v3`` paths: what clients see."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from support.clocks import fake_clock
from support.db import InlineDB
from support.images import png
from twisted.internet import defer
from twisted.web.test.requesthelper import DummyRequest

from federation.errors import MatrixError
from node.config import MediaConfig
from node.http.request import Requester
from node.http.router import Router
from node.http.server import ApiResource
from node.media import pending as pending_mod
from node.media.wiring import wire
from test_media_api import TOKENS, call, upload

SERVER = "school.example"
START_MS = 1_700_000_000_000


def make_api(tmp_path, monkeypatch, **media):
    monkeypatch.setattr(
        "node.media.wiring.threads.deferToThreadPool",
        lambda reactor, pool, fn, *a: defer.maybeDeferred(fn, *a),
    )
    cfg = MediaConfig(max_upload_bytes=200_000, per_user_quota_bytes=300_000, **media)
    config = SimpleNamespace(media=cfg, media_dir=str(tmp_path / "media"))
    router = Router()
    clock = fake_clock(START_MS)
    ctx = SimpleNamespace(
        config=config,
        reactor=SimpleNamespace(getThreadPool=lambda: None),
        clock=clock,
        db=InlineDB(f"sqlite:///{tmp_path}/node.db"),
        router=router,
        server_name=SERVER,
    )
    media_service = wire(ctx, accounts=None)

    async def authenticate(req, token):
        if token not in TOKENS:
            raise MatrixError("Unknown token", errcode="M_UNKNOWN_TOKEN", http_status=401)
        return Requester(TOKENS[token], "DEV")

    resource = ApiResource(
        router,
        authenticate=authenticate,
        max_body_bytes=1000,
        body_limits=media_service.body_limits,
    )
    return SimpleNamespace(resource=resource, media=media_service, clock=clock)


@pytest.fixture
def api(tmp_path, monkeypatch):
    return make_api(tmp_path, monkeypatch)


def start(api, path, query=None, token="tok-ben"):
    """Render a GET that may not finish at once (a download waiting for content)."""
    req = DummyRequest([])
    req.method = b"GET"
    req.path = path.encode()
    req.uri = path.encode() + (b"?" + urlencode(query).encode() if query else b"")
    req.args = {k.encode(): [str(v).encode()] for k, v in (query or {}).items()}
    req.content = io.BytesIO(b"")
    req._disconnected = False
    if token:
        req.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
    api.resource.render(req)
    return req


def create(api, token="tok-anna"):
    return call(api, "POST", "/_matrix/media/v1/create", token=token, body=b"{}")


def put(api, mxc, data, token="tok-anna", content_type="image/png"):
    server, media_id = mxc[len("mxc://") :].split("/")
    return call(
        api,
        "PUT",
        f"/_matrix/media/v3/upload/{server}/{media_id}",
        token=token,
        body=data,
        headers={"content-type": content_type},
        query={"filename": "pic.png"},
    )


def download_path(mxc, legacy=False):
    prefix = "/_matrix/media/v3" if legacy else "/_matrix/client/v1/media"
    return f"{prefix}/download/{mxc[len('mxc://') :]}"


def test_create_then_upload_then_download(api):
    resp = create(api)
    assert resp.code == 200
    mxc = resp.json["content_uri"]
    assert mxc.startswith(f"mxc://{SERVER}/")
    assert resp.json["unused_expires_at"] == START_MS + 24 * 3600 * 1000
    image = png(8, 8)
    assert (put(api, mxc, image).code, put(api, mxc, image).json["errcode"]) == (
        200,
        "M_CANNOT_OVERWRITE_MEDIA",
    )
    got = call(api, "GET", download_path(mxc), token="tok-ben")
    assert got.code == 200 and got.body == image
    assert got.headers["content-type"] == "image/png"


def test_only_the_creator_uploads_and_only_to_live_ids(api):
    mxc = create(api).json["content_uri"]
    resp = put(api, mxc, b"x", token="tok-ben")
    assert (resp.code, resp.json["errcode"]) == (403, "M_FORBIDDEN")
    for bad in (f"mxc://{SERVER}/neverCreated", "mxc://other.example/abc", f"mxc://{SERVER}/a%2Fb"):
        resp = put(api, bad, b"x")
        assert (resp.code, resp.json["errcode"]) == (404, "M_NOT_FOUND"), bad
    api.clock.reactor.advance(24 * 3600 + 1)  # unused for a day: expired
    resp = put(api, mxc, b"x")
    assert (resp.code, resp.json["errcode"]) == (404, "M_NOT_FOUND")


def test_the_upload_keeps_the_upload_limits(api):
    mxc = create(api).json["content_uri"]
    resp = put(api, mxc, b"x" * 200_001)
    assert (resp.code, resp.json["errcode"]) == (413, "M_TOO_LARGE")
    assert put(api, mxc, b"x" * 150_000).code == 200  # above the JSON body limit, within media
    mxc2 = create(api).json["content_uri"]
    upload(api, b"y" * 140_000)
    resp = put(api, mxc2, b"z" * 100_000)
    assert (resp.code, resp.json["errcode"]) == (403, "M_FORBIDDEN")  # quota


def test_pending_ids_per_user_are_capped(tmp_path, monkeypatch):
    api = make_api(tmp_path, monkeypatch, max_pending_uploads=2)
    first = create(api).json["content_uri"]
    assert create(api).code == 200
    resp = create(api)
    assert (resp.code, resp.json["errcode"]) == (429, "M_LIMIT_EXCEEDED")
    assert create(api, token="tok-ben").code == 200  # per user
    assert put(api, first, b"done").code == 200  # an uploaded ID no longer counts
    assert create(api).code == 200


def test_download_waits_for_the_content_then_serves_it(api):
    mxc = create(api).json["content_uri"]
    req = start(api, download_path(mxc), {"timeout_ms": 5000})
    assert not req.finished
    assert put(api, mxc, b"late bytes", content_type="text/plain").code == 200
    assert req.finished and b"".join(req.written) == b"late bytes"


def test_download_of_content_not_yet_uploaded_times_out_with_504(api):
    mxc = create(api).json["content_uri"]
    req = start(api, download_path(mxc), {"timeout_ms": 1000})
    assert not req.finished
    api.clock.reactor.advance(1.0)
    assert req.finished and req.responseCode == 504
    assert json.loads(b"".join(req.written))["errcode"] == "M_NOT_YET_UPLOADED"
    # timeout_ms=0: at once; unknown IDs stay 404; the wait is capped.
    resp = call(api, "GET", download_path(mxc), token="tok-ben", query={"timeout_ms": 0})
    assert (resp.code, resp.json["errcode"]) == (504, "M_NOT_YET_UPLOADED")
    resp = call(api, "GET", download_path(f"mxc://{SERVER}/unknownId"), token="tok-ben")
    assert (resp.code, resp.json["errcode"]) == (404, "M_NOT_FOUND")
    req = start(api, download_path(mxc), {"timeout_ms": 10**9})
    api.clock.reactor.advance(pending_mod.MAX_WAIT_MS / 1000)
    assert req.finished and req.responseCode == 504


def test_thumbnail_waits_too(api):
    mxc = create(api).json["content_uri"]
    path = f"/_matrix/client/v1/media/thumbnail/{mxc[len('mxc://') :]}"
    req = start(api, path, {"width": 32, "height": 32, "timeout_ms": 5000})
    assert not req.finished
    assert put(api, mxc, png(64, 64)).code == 200
    assert req.finished and req.responseCode in (None, 200)
    assert req.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"image/")


def test_legacy_paths_frozen_by_default(api):
    mxc = upload(api, png(8, 8), content_type="image/png").json["content_uri"]
    for path in (
        download_path(mxc, legacy=True),
        download_path(mxc, legacy=True) + "/name.png",
        f"/_matrix/media/v3/thumbnail/{mxc[len('mxc://') :]}",
    ):
        resp = call(api, "GET", path, token=None, query={"width": 32, "height": 32})
        assert (resp.code, resp.json["errcode"]) == (404, "M_NOT_FOUND"), path
    resp = call(api, "GET", "/_matrix/media/v3/config")
    assert resp.code == 200 and resp.json == {"m.upload.size": 200_000}
    assert call(api, "GET", "/_matrix/media/v3/config", token=None).code == 401
    for path in ("/_matrix/media/v3/preview_url", "/_matrix/client/v1/media/preview_url"):
        resp = call(api, "GET", path, query={"url": "http://169.254.169.254/"})
        assert (resp.code, resp.json["errcode"]) == (404, "M_UNRECOGNIZED"), path


def test_legacy_paths_served_when_the_school_allows_it(tmp_path, monkeypatch):
    api = make_api(tmp_path, monkeypatch, legacy_unauthenticated=True)
    image = png(8, 8)
    mxc = upload(api, image, content_type="image/png").json["content_uri"]
    resp = call(api, "GET", download_path(mxc, legacy=True), token=None)
    assert resp.code == 200 and resp.body == image
    resp = call(
        api,
        "GET",
        f"/_matrix/media/v3/thumbnail/{mxc[len('mxc://') :]}",
        token=None,
        query={"width": 32, "height": 32},
    )
    assert resp.code == 200 and resp.headers["content-type"].startswith("image/")
