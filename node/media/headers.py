"""Response headers for served media (client-server API "Content repository" > "Serving inline
content", the download endpoints' ``Content-Type``/``Content-Disposition`` rules, and the
recommended ``Content-Security-Policy`` / ``Cross-Origin-Resource-Policy``).

Only the spec's list of types is ever served ``inline``; everything else (HTML, SVG, scripts,
unknown types) is an ``attachment``, and the sandboxing CSP plus ``nosniff`` apply to all of it.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

# "Serving inline content": the only types a server should serve with ``inline``.
INLINE_SAFE_TYPES = frozenset(
    {
        "text/css",
        "text/plain",
        "text/csv",
        "application/json",
        "application/ld+json",
        "image/jpeg",
        "image/gif",
        "image/png",
        "image/apng",
        "image/webp",
        "image/avif",
        "video/mp4",
        "video/webm",
        "video/ogg",
        "video/quicktime",
        "audio/mp4",
        "audio/webm",
        "audio/aac",
        "audio/mpeg",
        "audio/ogg",
        "audio/wave",
        "audio/wav",
        "audio/x-wav",
        "audio/x-pn-wav",
        "audio/flac",
        "audio/x-flac",
    }
)

CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; script-src 'none'; "
    "plugin-types application/pdf; style-src 'unsafe-inline'; "
    "object-src 'self';"
)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_FILENAME_CHARS = 255

# RFC 9110 media-type: token "/" token *( OWS ";" OWS parameter ), kept to printable ASCII.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\r\n]*\"))*\Z")
# Characters that may appear unescaped inside a quoted-string filename.
_PLAIN_FILENAME = re.compile(r"[ !#-\[\]-~]+\Z")  # printable ASCII minus '"' and '\'
# Never part of a served or stored file name: C0/C1 controls and DEL (header splitting,
# terminal escapes), line/paragraph separators, and the bidirectional overrides, embeddings,
# isolates and marks that make "invoice\u202efdp.exe" display as "invoiceexe.pdf".
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def clean_content_type(raw: str | None) -> str:
    """The uploader's Content-Type if it is a well-formed media type, else octet-stream."""
    if not raw:
        return DEFAULT_CONTENT_TYPE
    value = raw.strip()
    if len(value) > 255 or not _MEDIA_TYPE.match(value):
        return DEFAULT_CONTENT_TYPE
    return value


def clean_filename(raw: str | None) -> str | None:
    """A file name safe to store and serve: control and direction-changing characters dropped,
    path separators replaced, at most ``MAX_FILENAME_CHARS`` characters, ``None`` if empty.

    Applied to upload names, to the name in a download path and to a remote server's name,
    each time a ``Content-Disposition`` is built (names stored by older versions included).
    """
    if not raw:
        return None
    # Lone surrogates (from a lenient decoder) cannot be UTF-8 encoded later: replace them.
    name = raw[: 4 * MAX_FILENAME_CHARS].encode("utf-8", "replace").decode("utf-8")
    name = _CONTROL.sub("", name).replace("/", "_").replace("\\", "_").strip()
    return name[:MAX_FILENAME_CHARS].strip() or None


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
    filename = clean_filename(filename)
    if not filename:
        return disposition
    if _PLAIN_FILENAME.match(filename):
        return f'{disposition}; filename="{filename}"'
    return f"{disposition}; filename*=utf-8''{quote(filename, safe='')}"


def served_content_type(content_type: str) -> str:
    """Rule from the download's ``Content-Type`` header: ``text/*`` gets a charset."""
    if essence(content_type).startswith("text/") and "charset" not in content_type.lower():
        return content_type + "; charset=utf-8"
    return content_type


def media_headers(
    content_type: str, filename: str | None, *, force_inline: bool = False
) -> dict[str, str]:
    inline = force_inline or is_inline_safe(content_type)
    return {
        "Content-Disposition": content_disposition("inline" if inline else "attachment", filename),
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
        # Authenticated media: caches must not share it between users.
        "Cache-Control": "private, max-age=86400",
    }


# A disposition parameter: token "=" ( token / quoted-string ), RFC 6266 section 4.1.  An
# unterminated quoted string runs to the end of the header.
_PARAM = re.compile(r'([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*(?:"|\Z)|[^;]*)')
# RFC 8187 ext-value: charset "'" [ language ] "'" value-chars.
_EXT_VALUE = re.compile(r"(UTF-8|ISO-8859-1)'[A-Za-z0-9-]*'(.*)\Z", re.IGNORECASE | re.DOTALL)
MAX_DISPOSITION_CHARS = 8 * 1024


def _ext_value(value: str) -> str | None:
    m = _EXT_VALUE.match(value)
    if m is None:
        return None
    try:
        return unquote_to_bytes(m.group(2)).decode(m.group(1).lower())
    except (UnicodeDecodeError, LookupError):
        return None


def _plain_value(value: str) -> str:
    if value.startswith('"'):
        value = re.sub(
            r"\\(.)", r"\1", value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        )
    try:
        # HTTP header bytes arrive as Latin-1; a sender that wrote raw UTF-8 meant UTF-8.
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def filename_from_disposition(header: str | None) -> str | None:
    """The file name a remote server's ``Content-Disposition`` gives, cleaned, or ``None``.

    Server-server API "Content Repository": the remote ``filename`` is what our download
    serves.  ``filename*`` (RFC 8187, UTF-8 or ISO-8859-1, any language tag) wins over
    ``filename`` wherever it stands (RFC 6266 section 4.3); a quoted ``filename`` is unescaped
    but not percent-decoded.  Anything malformed gives no name rather than an error.
    """
    if not header:
        return None
    _, _, params = header[:MAX_DISPOSITION_CHARS].partition(";")
    plain = extended = None
    for m in _PARAM.finditer(params):
        key, value = m.group(1).lower(), m.group(2).strip()
        if key == "filename*" and extended is None:
            extended = _ext_value(value)
        elif key == "filename" and plain is None:
            plain = _plain_value(value)
    return clean_filename(extended if extended is not None else plain)
