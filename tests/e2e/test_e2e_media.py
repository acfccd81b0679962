"""E2E: the content repository with matrix-nio — upload, share as m.file/m.image, download the
identical bytes as another user, thumbnails, limits (413 / quota 403) and error paths."""

from __future__ import annotations

import io
import os
from urllib.parse import quote

from nio import (
    ContentRepositoryConfigResponse,
    MemoryDownloadResponse,
    ResizingMethod,
    RoomMessageFile,
    RoomMessageImage,
    RoomSendResponse,
    ThumbnailResponse,
    UploadResponse,
)
from PIL import Image

from e2e_helpers import api, create_room_with, http_request, run, sync_until, timeline_events


async def upload(client, data: bytes, content_type: str, filename: str | None) -> object:
    resp, _keys = await client.upload(
        io.BytesIO(data), content_type=content_type, filename=filename, filesize=len(data)
    )
    return resp


def png_bytes(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (30, 140, 60)).save(out, "PNG")
    return out.getvalue()


def test_send_file_and_image_download_identical(node):
    pdf = b"%PDF-1.4\n" + os.urandom(150_000)
    image = png_bytes(800, 600)

    async def scenario():
        anna = await node.new_client("anna")
        ben = await node.new_client("ben")
        try:
            room_id = await create_room_with(anna, ben, name="Klassenfahrt")

            up = await upload(anna, pdf, "application/pdf", "Elternbrief Klassenfahrt.pdf")
            assert isinstance(up, UploadResponse), up
            assert up.content_uri.startswith(f"mxc://{node.server_name}/")
            sent_file = await anna.room_send(
                room_id,
                "m.room.message",
                {
                    "msgtype": "m.file",
                    "body": "Elternbrief Klassenfahrt.pdf",
                    "url": up.content_uri,
                    "info": {"mimetype": "application/pdf", "size": len(pdf)},
                },
            )
            assert isinstance(sent_file, RoomSendResponse), sent_file

            img = await upload(anna, image, "image/png", "gruppenfoto.png")
            assert isinstance(img, UploadResponse), img
            sent_img = await anna.room_send(
                room_id,
                "m.room.message",
                {
                    "msgtype": "m.image",
                    "body": "gruppenfoto.png",
                    "url": img.content_uri,
                    "info": {"mimetype": "image/png", "w": 800, "h": 600, "size": len(image)},
                },
            )
            assert isinstance(sent_img, RoomSendResponse), sent_img

            events: dict = {}

            def both_seen(r) -> bool:
                events.update({e.event_id: e for e in timeline_events(r, room_id)})
                return {sent_file.event_id, sent_img.event_id} <= set(events)

            await sync_until(ben, both_seen)
            file_event = events[sent_file.event_id]
            image_event = events[sent_img.event_id]
            assert isinstance(file_event, RoomMessageFile) and file_event.url == up.content_uri
            assert isinstance(image_event, RoomMessageImage)

            got = await ben.download(mxc=file_event.url)
            assert isinstance(got, MemoryDownloadResponse), got
            assert got.body == pdf
            assert got.content_type == "application/pdf"
            assert got.filename == "Elternbrief Klassenfahrt.pdf"

            got = await ben.download(mxc=image_event.url)
            assert isinstance(got, MemoryDownloadResponse), got
            assert got.body == image and got.content_type == "image/png"

            server, media_id = image_event.url[len("mxc://") :].split("/")
            thumb = await ben.thumbnail(server, media_id, 96, 96, ResizingMethod.crop)
            assert isinstance(thumb, ThumbnailResponse), thumb
            assert Image.open(io.BytesIO(thumb.body)).size == (96, 96)
            thumb = await ben.thumbnail(server, media_id, 320, 240, ResizingMethod.scale)
            assert isinstance(thumb, ThumbnailResponse), thumb
            assert Image.open(io.BytesIO(thumb.body)).size == (320, 240)
        finally:
            await anna.close()
            await ben.close()

    run(scenario())


def test_media_config_and_auth(node):
    async def scenario():
        anna = await node.new_client("anna")
        try:
            cfg = await anna.content_repository_config()
            assert isinstance(cfg, ContentRepositoryConfigResponse), cfg
            assert cfg.upload_size == 50 * 1024 * 1024  # the config default
            up = await upload(anna, b"geheim", "text/plain", "notiz.txt")
            assert isinstance(up, UploadResponse), up
            return up.content_uri
        finally:
            await anna.close()

    mxc = run(scenario())
    server, media_id = mxc[len("mxc://") :].split("/")
    path = f"/_matrix/client/v1/media/download/{quote(server)}/{media_id}"
    status, body = api(node, "GET", path)  # no token: authenticated media
    assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"
    token = node.register("viewer")["access_token"]
    status, headers, data = http_request(
        "GET", node.base_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200 and data == b"geheim"
    assert headers["content-disposition"] == 'inline; filename="notiz.txt"'
    status, body = api(
        node, "GET", f"/_matrix/client/v1/media/download/{quote(server)}/nope", token=token
    )
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_html_upload_is_never_served_inline(node):
    token = node.register("mallory")["access_token"]
    status, body = api(
        node,
        "POST",
        "/_matrix/media/v3/upload?filename=x.html",
        token=token,
        raw_body=b"<script>alert(document.cookie)</script>",
        headers={"Content-Type": "text/html"},
    )
    assert status == 200, body
    server, media_id = body["content_uri"][len("mxc://") :].split("/")
    status, headers, _ = http_request(
        "GET",
        f"{node.base_url}/_matrix/client/v1/media/download/{quote(server)}/{media_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 200
    assert headers["content-disposition"].startswith("attachment")
    assert "sandbox" in headers["content-security-policy"]


def test_oversized_upload_and_quota(node_factory):
    small = node_factory(media={"max_upload_bytes": 10_000, "per_user_quota_bytes": 20_000})

    async def scenario():
        anna = await small.new_client("anna")
        try:
            cfg = await anna.content_repository_config()
            assert cfg.upload_size == 10_000
            too_big = await upload(anna, b"x" * 10_001, "application/octet-stream", "big.bin")
            assert not isinstance(too_big, UploadResponse)
            assert too_big.status_code == "M_TOO_LARGE"
            for i in range(2):
                ok = await upload(anna, os.urandom(9_000), "application/octet-stream", f"{i}")
                assert isinstance(ok, UploadResponse), ok
            over = await upload(anna, os.urandom(3_000), "application/octet-stream", "more")
            assert not isinstance(over, UploadResponse)
            assert over.status_code == "M_FORBIDDEN"
        finally:
            await anna.close()

    run(scenario())
    token = small.register("raw")["access_token"]
    status, body = api(
        small,
        "POST",
        "/_matrix/media/v3/upload",
        token=token,
        raw_body=b"y" * 10_001,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 413 and body["errcode"] == "M_TOO_LARGE"
