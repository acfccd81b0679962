"""Response headers for served media (client-server API "Content repository" > "Serving inline
content", the download endpoints' ``Content-Type``/``Content-Disposition`` rules, and the
recommended ``Content-Security-Policy`` / ``Cross-Origin-Resource-Policy``).

Only the spec's list of types is ever served ``inline``; everything else (HTML, SVG, scripts,
unknown types) is an ``attachment``, and the sandboxing CSP plus ``nosniff`` apply to all of it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# "Serving inline content": the only types a server should serve with ``inline``.
INLINE_SAFE_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave",
    "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})

CONTENT_SECURITY_POLICY = ("sandbox; default-src 'none'; script-src 'none'; "
                           "plugin-types application/pdf; style-src 'unsafe-inline'; "
                           "object-src 'self';")

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_FILENAME_CHARS = 255

# RFC 9110 media-type: token "/" token *( OWS ";" OWS parameter ), kept to printable ASCII.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\r\n]*\"))*\Z")
# Characters that may appear unescaped inside a quoted-string filename.
_PLAIN_FILENAME = re.compile(r"[ !#-\[\]-~]+\Z")       # printable ASCII minus '"' and '\'
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_content_type(raw: str | None) -> str:
    """The uploader's Content-Type if it is a well-formed media type, else octet-stream."""
    if not raw:
        return DEFAULT_CONTENT_TYPE
    value = raw.strip()
    if len(value) > 255 or not _MEDIA_TYPE.match(value):
        return DEFAULT_CONTENT_TYPE
    return value


def clean_filename(raw: str | None) -> str | None:
    """A stored upload name: control characters and path parts dropped, length capped."""
    if raw is None:
        return None
    name = _CONTROL.sub("", raw).replace("/", "_").replace("\\", "_").strip()
    return name[:MAX_FILENAME_CHARS] or None


def essence(content_type: str) -> str:
    """``type/subtype`` lower-cased, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def is_inline_safe(content_type: str) -> bool:
    return essence(content_type) in INLINE_SAFE_TYPES


def content_disposition(disposition: str, filename: str | None) -> str:
    """``inline``/``attachment`` with the file name quoted safely (RFC 6266 / RFC 8187).

    Plain printable ASCII names go in ``filename="..."``; anything else is percent-encoded
    UTF-8 in ``filename*=utf-8''...`` so the header stays ASCII and cannot be split.
    """
    if not filename:
        return disposition
    filename = _CONTROL.sub("", filename)
    if _PLAIN_FILENAME.match(filename):
        return f'{disposition}; filename="{filename}"'
    return f"{disposition}; filename*=utf-8''{quote(filename, safe='')}"


def served_content_type(content_type: str) -> str:
    """Rule from the download's ``Content-Type`` header: ``text/*`` gets a charset."""
    if essence(content_type).startswith("text/") and "charset" not in content_type.lower():
        return content_type + "; charset=utf-8"
    return content_type


def media_headers(content_type: str, filename: str | None, *,
                  force_inline: bool = False) -> dict[str, str]:
    inline = force_inline or is_inline_safe(content_type)
    return {
        "Content-Disposition": content_disposition("inline" if inline else "attachment",
                                                   filename),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
        # Authenticated media: caches must not share it between users.
        "Cache-Control": "private, max-age=86400",
    }
