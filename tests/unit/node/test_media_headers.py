"""mxc:// sanitising, Content-Type/Content-Disposition rules and the content-addressed store."""

from __future__ import annotations

import hashlib
import os

import pytest

from node.media.headers import (
    clean_content_type,
    clean_filename,
    content_disposition,
    filename_from_disposition,
    media_headers,
    served_content_type,
)
from node.media.ids import is_valid_media_id, is_valid_server_name, new_media_id, parse_mxc
from node.media.store import MediaStore


def test_new_media_ids_are_random_and_valid():
    ids = {new_media_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(is_valid_media_id(i) and len(i) == 24 for i in ids)


@pytest.mark.parametrize("media_id", ["../etc/passwd", "a/b", "a.b", "", "%2e%2e", "a b", "ü"])
def test_media_id_whitelist(media_id):
    assert not is_valid_media_id(media_id)


@pytest.mark.parametrize(
    "name,ok",
    [
        ("school42.city.example", True),
        ("localhost:8448", True),
        ("127.0.0.1", True),
        ("[::1]:8448", True),
        ("../../x", False),
        ("a/b", False),
        ("host:port", False),
        ("", False),
    ],
)
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
    # Quotes, backslashes and non-ASCII cannot break out of the header (a backslash is a
    # path separator to some clients: replaced like "/").
    header = content_disposition("attachment", 'a"b\\c.txt')
    assert header == "attachment; filename*=utf-8''a%22b_c.txt"
    header = content_disposition("inline", "Schüler-Zeugnis.pdf")
    assert header == "inline; filename*=utf-8''Sch%C3%BCler-Zeugnis.pdf"
    header.encode("ascii")


def test_html_and_svg_never_inline():
    for ctype in (
        "text/html",
        "text/html; charset=utf-8",
        "image/svg+xml",
        "application/javascript",
        "application/octet-stream",
    ):
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
    assert store.put(b"hello") == sha  # identical bytes: one file
    assert os.stat(path).st_mtime_ns == mtime
    assert store.get(sha) == b"hello"
    assert store.get("0" * 64) is None
    assert os.listdir(os.path.join(str(tmp_path), "tmp")) == []
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")


@pytest.mark.parametrize(
    "header,name",
    [
        ('inline; filename="cat.png"', "cat.png"),
        ("attachment; filename=cat.png", "cat.png"),
        ("attachment; filename*=UTF-8''Sch%C3%BCler.pdf", "Schüler.pdf"),
        ("attachment; filename*=utf-8'de'Sch%C3%BCler.pdf", "Schüler.pdf"),  # language tag
        ("attachment; filename*=ISO-8859-1''Sch%FCler.pdf", "Schüler.pdf"),
        # filename* wins over the ASCII fallback, wherever it stands (RFC 6266 section 4.3).
        ("attachment; filename*=UTF-8''%C3%A4.txt; filename=\"a.txt\"", "ä.txt"),
        ("attachment; filename=\"a.txt\"; filename*=UTF-8''%C3%A4.txt", "ä.txt"),
        # Quoted-string escapes; a ";" inside quotes is part of the name.
        (r'attachment; filename="a\"b;c.txt"', 'a"b;c.txt'),
        # A plain filename is not percent-decoded.
        ('attachment; filename="100%25.txt"', "100%25.txt"),
        # Raw UTF-8 in a quoted filename (seen as Latin-1 by the HTTP layer).
        ('inline; filename="Sch\xc3\xbcler.pdf"', "Schüler.pdf"),
        # Hostile or broken: cleaned, or no name.
        ('attachment; filename="..\\\\..\\\\evil\x07.exe"', ".._.._evil.exe"),
        ("attachment; filename*=UTF-8''%E2%80%AEfdp.exe", "fdp.exe"),
        ("attachment; filename*=UTF-8''%FF%FE", None),  # undecodable ext-value, no fallback
        ("attachment; filename*=KOI8-R''%C1", None),  # charset outside RFC 8187's two
        ('attachment; filename="unterminated', "unterminated"),
        ("attachment; filename=", None),
        ("attachment", None),
        ("", None),
        (None, None),
    ],
)
def test_filename_from_remote_content_disposition(header, name):
    assert filename_from_disposition(header) == name


def test_filename_from_remote_content_disposition_is_capped():
    assert len(filename_from_disposition("inline; filename=" + "a" * 100_000)) == 255


def test_remote_media_file_name_is_parsed_and_cleaned():
    """A remote server's Content-Disposition reaches our download header only cleaned."""
    from types import SimpleNamespace

    from node.federation.remote.media import RemoteMedia

    disposition = (
        'attachment; filename="fallback.txt"; '
        "filename*=UTF-8''..%2F..%2Finvoice%E2%80%AEfdp.exe%0D%0AX-Evil%3A%201"
    )
    body = (
        b"--XyZ\r\nContent-Type: application/json\r\n\r\n{}\r\n--XyZ\r\n"
        + f"Content-Type: application/pdf\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + b"%PDF"
        + b"\r\n--XyZ--\r\n"
    )
    raw = SimpleNamespace(
        status=200, body=body, header=lambda name: "multipart/mixed; boundary=XyZ"
    )
    remote = RemoteMedia(
        client=None, clock=SimpleNamespace(time_ms=lambda: 1), server_name="school.example"
    )
    info, data = remote._multipart("other.example", "abc", raw)
    assert data == b"%PDF"
    assert info.upload_name == ".._.._invoicefdp.exeX-Evil: 1"
    header = media_headers(info.content_type, info.upload_name)["Content-Disposition"]
    assert header == 'attachment; filename=".._.._invoicefdp.exeX-Evil: 1"'
