"""``mxc://`` URIs and media IDs (client-server API "Content repository" > "Matrix Content
(``mxc://``) URIs" and "Security considerations").

The spec requires homeservers to sanitise both parts of an ``mxc://`` URI: the server name must be
a valid server name (appendix "Server Name") and the media ID may only hold ``A-Za-z0-9``, ``_``
and ``-``.  Anything else is refused before it reaches storage.
"""

from __future__ import annotations

import re
import secrets
import string

MEDIA_ID_LENGTH = 24
_MEDIA_ID_ALPHABET = string.ascii_letters + string.digits
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")

# Appendix "Server Name": server_name = hostname [ ":" port ]; hostname = IPv4address /
# "[" IPv6address "]" / dns-name (1-255 chars of [0-9A-Za-z.-]); port = 1*5DIGIT.
_SERVER_NAME = re.compile(
    r"(?:\d{1,3}(?:\.\d{1,3}){3}"  # IPv4address
    r"|\[[0-9A-Fa-f:.]{2,45}\]"  # "[" IPv6address "]"
    r"|[0-9A-Za-z.-]{1,255})"  # dns-name
    r"(?::\d{1,5})?\Z"
)


def new_media_id() -> str:
    """A fresh random media ID (~143 bits from a CSPRNG, alphanumeric only)."""
    return "".join(secrets.choice(_MEDIA_ID_ALPHABET) for _ in range(MEDIA_ID_LENGTH))


def is_valid_media_id(media_id: str) -> bool:
    return bool(_MEDIA_ID.match(media_id))


def is_valid_server_name(server_name: str) -> bool:
    return bool(_SERVER_NAME.match(server_name))


def mxc_uri(server_name: str, media_id: str) -> str:
    return f"mxc://{server_name}/{media_id}"


def parse_mxc(uri: str) -> tuple[str, str] | None:
    """``mxc://server/id`` -> ``(server, id)``, or ``None`` when either part is invalid."""
    if not uri.startswith("mxc://"):
        return None
    server_name, sep, media_id = uri[6:].partition("/")
    if not sep or not is_valid_server_name(server_name) or not is_valid_media_id(media_id):
        return None
    return server_name, media_id
