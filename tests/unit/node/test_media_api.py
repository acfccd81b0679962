"""The media endpoints through the real ``ApiResource`` and router, in-process.

DB work and file I/O run synchronously here (a SQLite file DB, an immediate ``offload``), so each
request completes inside ``render``; the real node runs the same code on worker threads.
"""

from __future__ import annotations

import io
import json
import os
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import pytest
from PIL import Image
from support.clocks import FakeClock
from support.db import InlineDB
from support.images import png
from twisted.internet import defer
from twisted.web.test.requesthelper import DummyRequest

import schema.media  # noqa: F401 - registers the tables
from federation.errors import MatrixError
from node.config import MediaConfig
from node.http.request import Requester
from node.http.router import Router
from node.http.server import ApiResource
from node.media.wiring import wire

SERVER = "school.example"
TOKENS = {"tok-anna": "@anna:school.example", "tok-ben": "@ben:school.example"}


@pytest.fixture
def api(tmp_path, monkeypatch):
    return media_api(
        tmp_path, monkeypatch, MediaConfig(max_upload_bytes=200_000, per_user_quota_bytes=300_000)
    )


def media_api(tmp_path, monkeypatch, media_config: MediaConfig) -> SimpleNamespace:
    """The media area wired in process (DB calls and thumbnailing inline) behind a real
    ``ApiResource``; also used by the streaming tests."""
    monkeypatch.setattr(
        "node.media.wiring.threads.deferToThreadPool",
        lambda reactor, pool, fn, *a: defer.maybeDeferred(fn, *a),
    )
    config = SimpleNamespace(media=media_config, media_dir=str(tmp_path / "media"))
    router = Router()
    ctx = SimpleNamespace(
        config=config,
        reactor=SimpleNamespace(getThreadPool=lambda: None),
        clock=FakeClock(),
        db=InlineDB(f"sqlite:///{tmp_path}/node.db"),
        router=router,
        server_name=SERVER,
    )
    media = wire(ctx, accounts=None)

    async def authenticate(req, token):
        if token not in TOKENS:
            raise MatrixError("Unknown token", errcode="M_UNKNOWN_TOKEN", http_status=401)
        return Requester(TOKENS[token], "DEV")

    resource = ApiResource(
        router, authenticate=authenticate, max_body_bytes=1000, body_limits=media.body_limits
    )
    return SimpleNamespace(resource=resource, media=media, media_dir=config.media_dir)


def call(
    api,
    method: str,
    path: str,
    *,
    token: str | None = "tok-anna",
    body: bytes = b"",
    headers: dict | None = None,
    query: dict | None = None,
):
    req = DummyRequest([])
    req.method = method.encode()
    req.path = path.encode()
    req.uri = path.encode() + (b"?" + urlencode(query).encode() if query else b"")
    req.args = {k.encode(): [str(v).encode()] for k, v in (query or {}).items()}
    req.content = io.BytesIO(body)
    req._disconnected = False
    req.requestHeaders.setRawHeaders(b"content-length", [str(len(body)).encode()])
    if token:
        req.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
    for k, v in (headers or {}).items():
        req.requestHeaders.setRawHeaders(k.encode(), [v.encode()])
    api.resource.render(req)
    assert req.finished, "request did not complete synchronously"
    data = b"".join(req.written)
    resp_headers = {
        k.decode().lower(): v[-1].decode() for k, v in req.responseHeaders.getAllRawHeaders()
    }
    code = req.responseCode or 200
    return SimpleNamespace(
        code=code,
        body=data,
        headers=resp_headers,
        json=(json.loads(data) if resp_headers.get("content-type") == "application/json" else None),
    )


def upload(
    api, data: bytes, content_type="application/octet-stream", filename=None, token="tok-anna"
):
    query = {"filename": filename} if filename is not None else None
    resp = call(
        api,
        "POST",
        "/_matrix/media/v3/upload",
        body=data,
        token=token,
        headers={"content-type": content_type},
        query=query,
    )
    return resp


def media_path(mxc: str) -> str:
    server, media_id = mxc[len("mxc://") :].split("/")
    return f"{quote(server)}/{media_id}"


def test_upload_then_download_bytes_identical(api):
    data = os.urandom(5000)
    resp = upload(api, data, "application/pdf", filename="Zeugnis Klasse 5.pdf")
    assert resp.code == 200, resp.body
    mxc = resp.json["content_uri"]
    assert mxc.startswith(f"mxc://{SERVER}/")
    got = call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}")
    assert got.code == 200
    assert got.body == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == 'attachment; filename="Zeugnis Klasse 5.pdf"'
    assert "sandbox" in got.headers["content-security-policy"]
    # matrix-nio's spelling (trailing slash) and a file name override from the path.
    assert call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}/").body == data
    over = call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}/other.pdf")
    assert over.body == data
    assert over.headers["content-disposition"] == 'attachment; filename="other.pdf"'


def test_identical_uploads_share_bytes_but_get_distinct_ids(api):
    a = upload(api, b"same bytes").json["content_uri"]
    b = upload(api, b"same bytes", token="tok-ben").json["content_uri"]
    assert a != b
    files = [f for _, _, fs in os.walk(os.path.join(api.media_dir, "content")) for f in fs]
    assert len(files) == 1


def test_html_is_served_as_attachment(api):
    mxc = upload(api, b"<script>alert(1)</script>", "text/html", "x.html").json["content_uri"]
    got = call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}")
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    mxc = upload(api, b"hello", "text/plain").json["content_uri"]
    got = call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}")
    assert got.headers["content-disposition"] == "inline"  # no filename given
    assert got.headers["content-type"] == "text/plain; charset=utf-8"


def test_download_requires_auth(api):
    mxc = upload(api, b"x").json["content_uri"]
    resp = call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}", token=None)
    assert resp.code == 401 and resp.json["errcode"] == "M_MISSING_TOKEN"
    resp = call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}", token="bogus")
    assert resp.code == 401 and resp.json["errcode"] == "M_UNKNOWN_TOKEN"


@pytest.mark.parametrize(
    "path",
    [
        f"/_matrix/client/v1/media/download/{SERVER}/doesnotexist",
        "/_matrix/client/v1/media/download/other.example/abcdef",  # remote: later issue
        f"/_matrix/client/v1/media/download/{SERVER}/..%2F..%2Fnode.db",
        "/_matrix/client/v1/media/download/bad%2Fname/abc",
    ],
)
def test_unknown_media_404(api, path):
    resp = call(api, "GET", path)
    assert resp.code == 404 and resp.json["errcode"] == "M_NOT_FOUND"


def test_too_large_upload_413(api):
    resp = upload(api, b"x" * 200_001)
    assert resp.code == 413 and resp.json["errcode"] == "M_TOO_LARGE"
    assert upload(api, b"x" * 200_000).code == 200  # exactly the limit is fine


def test_quota_403(api):
    assert upload(api, os.urandom(150_000)).code == 200
    assert upload(api, os.urandom(150_000)).code == 200
    resp = upload(api, b"one byte too many")
    assert resp.code == 403 and resp.json["errcode"] == "M_FORBIDDEN"
    assert upload(api, b"other user is unaffected", token="tok-ben").code == 200


def test_config(api):
    resp = call(api, "GET", "/_matrix/client/v1/media/config")
    assert resp.code == 200 and resp.json == {"m.upload.size": 200_000}


def test_thumbnail_scale_and_crop(api):
    mxc = upload(api, png(1000, 500), "image/png", "big.png").json["content_uri"]
    path = f"/_matrix/client/v1/media/thumbnail/{media_path(mxc)}"
    resp = call(api, "GET", path, query={"width": 300, "height": 200, "method": "scale"})
    assert resp.code == 200, resp.body
    assert resp.headers["content-type"] == "image/png"
    assert resp.headers["content-disposition"] == 'inline; filename="thumbnail.png"'
    assert Image.open(io.BytesIO(resp.body)).size == (320, 160)
    resp = call(api, "GET", path, query={"width": 32, "height": 32, "method": "crop"})
    assert Image.open(io.BytesIO(resp.body)).size == (32, 32)
    # Served again from the cache: same bytes.
    again = call(api, "GET", path, query={"width": 32, "height": 32, "method": "crop"})
    assert again.body == resp.body


def test_thumbnail_of_small_image_is_the_original(api):
    data = png(20, 20)
    mxc = upload(api, data, "application/octet-stream").json["content_uri"]
    resp = call(
        api,
        "GET",
        f"/_matrix/client/v1/media/thumbnail/{media_path(mxc)}",
        query={"width": 96, "height": 96},
    )
    assert resp.code == 200 and resp.body == data
    assert resp.headers["content-type"] == "image/png"  # what Pillow saw, not the claim


def test_thumbnail_errors(api):
    mxc = upload(api, b"<html>not an image</html>", "image/png").json["content_uri"]
    path = f"/_matrix/client/v1/media/thumbnail/{media_path(mxc)}"
    resp = call(api, "GET", path, query={"width": 96, "height": 96})
    assert resp.code == 400 and resp.json["errcode"] == "M_UNKNOWN"
    resp = call(api, "GET", path, query={"width": 96})
    assert resp.code == 400 and resp.json["errcode"] == "M_MISSING_PARAM"
    resp = call(api, "GET", path, query={"width": -1, "height": 5})
    assert resp.code == 400 and resp.json["errcode"] == "M_INVALID_PARAM"
    resp = call(api, "GET", path, query={"width": 5, "height": 5, "method": "stretch"})
    assert resp.code == 400 and resp.json["errcode"] == "M_INVALID_PARAM"
    resp = call(
        api,
        "GET",
        f"/_matrix/client/v1/media/thumbnail/{SERVER}/nope",
        query={"width": 5, "height": 5},
    )
    assert resp.code == 404 and resp.json["errcode"] == "M_NOT_FOUND"


def test_thumbnail_too_many_pixels_413(api):
    api.media.config.max_thumbnail_pixels = 10_000
    mxc = upload(api, png(200, 200), "image/png").json["content_uri"]
    resp = call(
        api,
        "GET",
        f"/_matrix/client/v1/media/thumbnail/{media_path(mxc)}",
        query={"width": 32, "height": 32},
    )
    assert resp.code == 413 and resp.json["errcode"] == "M_TOO_LARGE"


def test_service_upload_contract(api):
    """MediaService.upload is what other areas (demo seeding, avatars) call directly."""
    result = []
    defer.ensureDeferred(
        api.media.upload("@anna:school.example", "text/plain", "a.txt", b"hi")
    ).addCallback(result.append)
    assert result and result[0].startswith(f"mxc://{SERVER}/")


def thumbnail_rows(api) -> int:
    from sqlalchemy import func, select

    from schema.media import media_thumbnails

    with api.media.db.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(media_thumbnails)).scalar_one()


def test_distinct_requested_sizes_cannot_grow_the_thumbnail_cache(api):
    mxc = upload(api, png(1600, 1200), "image/png").json["content_uri"]
    path = f"/_matrix/client/v1/media/thumbnail/{media_path(mxc)}"
    sizes = api.media.config.thumbnail_sizes
    for i in range(50):
        resp = call(api, "GET", path, query={"width": 10 + i * 16, "height": 8 + i * 12})
        assert resp.code == 200, resp.body
        w, h = Image.open(io.BytesIO(resp.body)).size
        # Never smaller than asked (the original is large enough), never upscaled.
        assert (w >= 10 + i * 16 or h >= 8 + i * 12) and w <= 1600 and h <= 1200
    # 50 sizes up to 794x596: one row per configured size at most.
    assert thumbnail_rows(api) <= len(sizes)
    for i in range(20):  # beyond every configured size: one shared full-size box
        assert call(api, "GET", path, query={"width": 900 + i, "height": 700 + i}).code == 200
    assert thumbnail_rows(api) <= len(sizes) + 1
    files = [f for _, _, fs in os.walk(os.path.join(api.media_dir, "content")) for f in fs]
    assert len(files) <= 1 + len(sizes)


def bomb_png(w: int, h: int) -> bytes:
    from test_media_thumbnailer import blank_png

    return blank_png(w, h)


def test_png_bomb_thumbnail_413_and_other_users_unaffected(api):
    bomb = upload(api, bomb_png(7000, 7000), "image/png", "tiny.png")
    assert bomb.code == 200, bomb.body  # a 150 KB upload is fine; thumbnailing is not
    path = f"/_matrix/client/v1/media/thumbnail/{media_path(bomb.json['content_uri'])}"
    for width, height in ((32, 32), (96, 96), (320, 240), (800, 600)):
        resp = call(api, "GET", path, query={"width": width, "height": height})
        assert resp.code == 413 and resp.json["errcode"] == "M_TOO_LARGE"
        assert resp.json["error"]
    # The bytes themselves still download; Ben's picture still thumbnails.
    download = f"/_matrix/client/v1/media/download/{media_path(bomb.json['content_uri'])}"
    assert call(api, "GET", download).code == 200
    mxc = upload(api, png(640, 640), "image/png", token="tok-ben").json["content_uri"]
    resp = call(
        api,
        "GET",
        f"/_matrix/client/v1/media/thumbnail/{media_path(mxc)}",
        query={"width": 96, "height": 96},
        token="tok-ben",
    )
    assert resp.code == 200 and Image.open(io.BytesIO(resp.body)).size == (96, 96)


@pytest.mark.parametrize(
    "path_name,expected",
    [
        # CR/LF from the path cannot split the header or add one.
        ("a%0D%0ASet-Cookie:%20x=1.txt", 'attachment; filename="aSet-Cookie: x=1.txt"'),
        # Quotes and backslashes cannot end the quoted string early.
        (
            "a%22%3B%20filename=evil.exe",
            "attachment; filename*=utf-8''a%22%3B%20filename%3Devil.exe",
        ),
        ("a%5C%22.txt", "attachment; filename*=utf-8''a_%22.txt"),
        # Non-ASCII: RFC 6266 / RFC 8187 ext-value, the header stays ASCII.
        (
            "Sch%C3%BCler%20%F0%9F%98%80.pdf",
            "attachment; filename*=utf-8''Sch%C3%BCler%20%F0%9F%98%80.pdf",
        ),
        # A right-to-left override would show "invoice_exe.pdf" for an .exe: dropped.
        ("invoice%E2%80%AEfdp.exe", 'attachment; filename="invoicefdp.exe"'),
        # C1 controls and invalid UTF-8 in the path.
        ("a%C2%85b%FF.txt", "attachment; filename*=utf-8''ab%EF%BF%BD.txt"),
        # Nothing left after cleaning: no filename parameter at all, not an empty one.
        ("%0D%0A%09", "attachment"),
    ],
)
def test_download_filename_from_path_is_sanitised(api, path_name, expected):
    mxc = upload(api, b"%PDF-1.4", "application/pdf", "orig.pdf").json["content_uri"]
    resp = call(api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}/{path_name}")
    assert resp.code == 200
    header = resp.headers["content-disposition"]
    assert header == expected
    header.encode("ascii")


def test_download_filename_from_path_is_capped(api):
    mxc = upload(api, b"data", "application/pdf").json["content_uri"]
    resp = call(
        api, "GET", f"/_matrix/client/v1/media/download/{media_path(mxc)}/{'%C3%BC' * 2000}.pdf"
    )
    assert resp.code == 200
    header = resp.headers["content-disposition"]
    assert header.startswith("attachment; filename*=utf-8''%C3%BC")
    assert len(header) < 255 * 6 + 40  # at most 255 characters, percent-encoded


def many_frame_gif(frames: int) -> bytes:
    """A 1000x1000 GIF of ``frames`` 1x1 frames: a few KB, but every frame must be walked."""
    import struct

    head = b"GIF89a" + struct.pack("<HH", 1000, 1000) + b"\x80\x00\x00" + b"\x00" * 3 + b"\xff" * 3
    frame = (
        b"\x21\xf9\x04\x00\x01\x00\x00\x00"
        + b"\x2c"
        + struct.pack("<HHHH", 0, 0, 1, 1)
        + b"\x00\x02\x02\x44\x01\x00"
    )
    return head + frame * frames + b"\x3b"


def test_animation_refusal_is_remembered_not_recomputed(api, monkeypatch):
    from node.media import thumbnailer

    mxc = upload(api, many_frame_gif(2000), "image/gif").json["content_uri"]
    path = f"/_matrix/client/v1/media/thumbnail/{media_path(mxc)}"
    plans = []
    real_plan = thumbnailer.plan
    monkeypatch.setattr(thumbnailer, "plan", lambda *a, **k: plans.append(1) or real_plan(*a, **k))
    for _ in range(5):
        resp = call(api, "GET", path, query={"width": 96, "height": 96, "animated": "true"})
        assert resp.code == 413 and resp.json["errcode"] == "M_TOO_LARGE"
    assert len(plans) == 1  # the frames were walked once, not five times
    # The first frame alone is fine.
    resp = call(api, "GET", path, query={"width": 96, "height": 96})
    assert resp.code == 200, resp.body
