"""Identifier grammar: server names, user IDs, event IDs and room IDs.

Spec: appendices "Server Name", "User Identifiers" (including "Historical User IDs": servers
must accept them over federation), "Event IDs" (room versions 4 and later: ``$`` + URL-safe
unpadded Base64 of a SHA-256 hash), "Room IDs" (``!opaque:server_name``; room version 12:
the create event's ID with the ``!`` sigil); identifiers are at most 255 bytes.

The one implementation behind the PDU format check (``federation.events.format``), the
authorization rules (``federation.auth.user_ids``) and the roster/enrolment code.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from .room_versions import RoomVersion

MAX_ID_BYTES = 255  # user IDs, room IDs, event IDs

# server_name = hostname [ ":" port ]; hostname = IPv4 / "[" IPv6 "]" / dns-name
_SERVER_NAME_RE = r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[0-9A-Za-z.\-]{1,255})(?::[0-9]{1,5})?"
_SERVER_NAME = re.compile(_SERVER_NAME_RE + r"\Z")
# user_id = "@" localpart ":" server_name, localpart as "Historical User IDs" allow.
_USER_ID = re.compile(r"@[^:\x00]*:(" + _SERVER_NAME_RE + r")\Z")
_IPV4ISH = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?::|\Z)")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Event IDs from room version 4 on: "$" + URL-safe unpadded Base64 of a SHA-256 hash.
_EVENT_ID_V4 = re.compile(r"\$[A-Za-z0-9_\-]{43}\Z")
# v12 room IDs: the create event's ID with the "!" sigil.
_ROOM_ID_V12 = re.compile(r"![A-Za-z0-9_\-]{43}\Z")


def _too_long(s: str, max_bytes: int) -> bool:
    """Is the UTF-8 form of ``s`` longer than ``max_bytes``?  (<= 4 bytes per code point.)"""
    return len(s) * 4 > max_bytes and len(s.encode("utf-8", "surrogatepass")) > max_bytes


def _ipv4_ok(server_name: str) -> bool:
    """IPv4 literals "must be ... four decimal numbers in the range 0 to 255"."""
    if not server_name[0].isdigit() or not _IPV4ISH.match(server_name):
        return True
    host = server_name.split(":", 1)[0]
    return all(int(octet) <= 255 for octet in host.split("."))


def is_valid_server_name(name: object) -> TypeGuard[str]:
    """The appendix "Server Name" grammar; IPv4 literals must have octets <= 255."""
    return isinstance(name, str) and _SERVER_NAME.match(name) is not None and _ipv4_ok(name)


def is_valid_user_id(user_id: object) -> TypeGuard[str]:
    """A user ID as servers must accept it over federation ("Historical User IDs").

    ``@localpart:server_name``, at most 255 bytes; the localpart may be empty and may hold
    any non-surrogate code points except ``:`` and NUL.
    """
    if not isinstance(user_id, str) or _too_long(user_id, MAX_ID_BYTES):
        return False
    m = _USER_ID.match(user_id)
    if m is None or not _ipv4_ok(m.group(1)):
        return False
    return user_id.isascii() or _SURROGATE.search(user_id) is None


def is_valid_event_id(event_id: object) -> TypeGuard[str]:
    """An event ID of room versions 4 and later (all of 10-12)."""
    return isinstance(event_id, str) and _EVENT_ID_V4.match(event_id) is not None


def is_valid_room_id(room_id: object, room_version: RoomVersion) -> TypeGuard[str]:
    """A room ID in ``room_version``: ``!opaque:server_name`` (v10/v11) or a hash (v12)."""
    if not isinstance(room_id, str):
        return False
    if room_version.event_format.room_id_is_create_event_hash:
        return _ROOM_ID_V12.match(room_id) is not None
    if room_id[:1] != "!" or _too_long(room_id, MAX_ID_BYTES):
        return False
    opaque, sep, domain = room_id[1:].partition(":")
    return bool(sep) and "\x00" not in opaque and is_valid_server_name(domain)
