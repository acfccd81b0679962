"""mxc:// sanitising, Content-Type/Content-Disposition rules and the content-addressed store."""

from __future__ import annotations

import hashlib
import os

import pytest

from node.media.headers import (clean_content_type, clean_filename, content_disposition,
                                media_headers, served_content_type)
from node.media.ids import (is_valid_media_id, is_valid_server_name, new_media_id, parse_mxc)
from node.media.store import MediaStore


def test_new_media_ids_are_random_and_valid():
    ids = {new_media_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(is_valid_media_id(i) and len(i) == 24 for i in ids)


@pytest.mark.parametrize("media_id", ["../etc/passwd", "a/b", "a.b", "", "%2e%2e", "a b",
                                      "ü"])
def test_media_id_whitelist(media_id):
    assert not is_valid_media_id(media_id)


@pytest.mark.parametrize("name,ok", [
    ("school42.city.example", True), ("localhost:8448", True), ("127.0.0.1", True),
    ("[::1]:8448", True), ("../../x", False), ("a/b", False), ("host:port", False), ("", False),
])
def test_server_name_grammar(name, ok):
    assert is_valid_server_name(name) is ok


def test_parse_mxc():
    assert parse_mxc("mxc://school.example/abc_D-1") == ("school.example", "abc_D-1")
    assert parse_mxc("mxc://school.example/../../secret") is None
    assert parse_mxc("https://school.example/abc") is None
    assert parse_mxc("mxc://school.example") is None


def test_content_type_cleaning():
    assert clean_content_type("image/png") == "image/png"
    assert clean_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    assert clean_content_type(None) == "application/octet-stream"
    assert clean_content_type("not a type") == "application/octet-stream"
    assert clean_content_type("text/html\r\nSet-Cookie: x=1") == "application/octet-stream"


def test_filename_cleaning():
    assert clean_filename("report.pdf") == "report.pdf"
    assert clean_filename("../../etc/passwd") == ".._.._etc_passwd"
    assert clean_filename("a\r\nb") == "ab"
    assert clean_filename("") is None
    assert len(clean_filename("x" * 1000)) == 255


def test_content_disposition_quoting():
    assert content_disposition("inline", "cat.png") == 'inline; filename="cat.png"'
    assert content_disposition("attachment", None) == "attachment"
    # Quotes, backslashes and non-ASCII cannot break out of the header.
    header = content_disposition("attachment", 'a"b\\c.txt')
    assert header == "attachment; filename*=utf-8''a%22b%5Cc.txt"
    header = content_disposition("inline", "Schüler-Zeugnis.pdf")
    assert header == "inline; filename*=utf-8''Sch%C3%BCler-Zeugnis.pdf"
    header.encode("ascii")


def test_html_and_svg_never_inline():
    for ctype in ("text/html", "text/html; charset=utf-8", "image/svg+xml",
                  "application/javascript", "application/octet-stream"):
        assert media_headers(ctype, "x")["Content-Disposition"].startswith("attachment")
    for ctype in ("image/png", "text/plain", "video/mp4", "IMAGE/JPEG"):
        assert media_headers(ctype, "x")["Content-Disposition"].startswith("inline")
    h = media_headers("image/png", None)
    assert h["Content-Disposition"] == "inline"
    assert "sandbox" in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_text_gets_a_charset():
    assert served_content_type("text/plain") == "text/plain; charset=utf-8"
    assert served_content_type("text/csv; charset=latin-1") == "text/csv; charset=latin-1"
    assert served_content_type("image/png") == "image/png"


def test_store_is_content_addressed(tmp_path):
    store = MediaStore(str(tmp_path))
    sha = store.put(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    path = store.path_for(sha)
    assert path.startswith(str(tmp_path)) and os.path.basename(path) == sha
    mtime = os.stat(path).st_mtime_ns
    assert store.put(b"hello") == sha            # identical bytes: one file
    assert os.stat(path).st_mtime_ns == mtime
    assert store.get(sha) == b"hello"
    assert store.get("0" * 64) is None
    assert os.listdir(os.path.join(str(tmp_path), "tmp")) == []
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")
