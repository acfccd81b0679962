"""The server-server endpoints Parta serves and calls, in one table.

Every path of the federation listener and of the outbound federation client is written
here once: the inbound routes register from these entries, the outbound calls build their
paths with ``Endpoint.path`` (through ``client.encode_path``: each argument
percent-encoded as one path segment), and the server ACL guard takes its protected set from the
``acl_protected`` flags.  A path typed twice can drift (a ``v1`` here, a ``v2`` there); a
table cannot.

Spec: https://spec.matrix.org/v1.16/server-server-api/ -- each entry names its section.
``acl_protected`` is the list of "endpoint prefixes [that] MUST be protected" in
https://spec.matrix.org/v1.16/server-server-api/#server-access-control-lists-acls (the
``v1`` forms of ``send_join``, ``send_leave`` and ``invite`` in that list are neither
served nor called by Parta, so they have no entry).  ``signed`` is False for the endpoints
that take no X-Matrix ``Authorization`` header (the key endpoints and ``/version``,
https://spec.matrix.org/v1.16/server-server-api/#request-authentication, and
``openid/userinfo``, which third parties call with a user's OpenID token).

The ``/_parta/v1/...`` entries are Parta's own endpoints on the federation listener (the
city gateway's roster hints and statistics), X-Matrix signed like the spec's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .client import encode_path

_PARAM = re.compile(r"\{[A-Za-z_]+\}")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: ``template`` uses the spec's ``{paramName}`` placeholders, which are
    also the names the router passes to handlers."""

    name: str
    method: str
    template: str
    acl_protected: bool = False
    signed: bool = True
    _format: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_format", _PARAM.sub("{}", self.template))

    @property
    def acl_prefix(self) -> str:
        """The template up to its first parameter, without the trailing ``/``: the form
        of the spec's ACL prefix list."""
        return self.template.split("{", 1)[0].rstrip("/")

    def path(self, *args: str) -> str:
        """The request path with ``args`` in the template's placeholders, in order, each
        percent-encoded as one path segment (``/`` included)."""
        return encode_path(self._format, *args)


FED_V1 = "/_matrix/federation/v1"
FED_V2 = "/_matrix/federation/v2"
KEY_V2 = "/_matrix/key/v2"

# --- server discovery and keys (#server-discovery, #retrieving-server-keys) ----------------
VERSION = Endpoint("version", "GET", FED_V1 + "/version", signed=False)
KEY_SERVER = Endpoint("key_server", "GET", KEY_V2 + "/server", signed=False)
KEY_SERVER_SLASH = Endpoint("key_server_slash", "GET", KEY_V2 + "/server/", signed=False)
# The deprecated form with a key ID; answered like KEY_SERVER (all keys).
KEY_SERVER_KEY_ID = Endpoint("key_server_key_id", "GET", KEY_V2 + "/server/{keyId}", signed=False)
KEY_QUERY = Endpoint("key_query", "POST", KEY_V2 + "/query", signed=False)
KEY_QUERY_SERVER = Endpoint("key_query_server", "GET", KEY_V2 + "/query/{serverName}", signed=False)

# --- transactions (#transactions) ----------------------------------------------------------
SEND = Endpoint("send", "PUT", FED_V1 + "/send/{txnId}")

# --- events, state, backfill (#retrieving-events, #backfilling-and-retrieving-missing-events,
# #retrieving-event-authorisation-information) ----------------------------------------------
EVENT = Endpoint("event", "GET", FED_V1 + "/event/{eventId}")
STATE = Endpoint("state", "GET", FED_V1 + "/state/{roomId}", acl_protected=True)
STATE_IDS = Endpoint("state_ids", "GET", FED_V1 + "/state_ids/{roomId}", acl_protected=True)
EVENT_AUTH = Endpoint(
    "event_auth", "GET", FED_V1 + "/event_auth/{roomId}/{eventId}", acl_protected=True
)
BACKFILL = Endpoint("backfill", "GET", FED_V1 + "/backfill/{roomId}", acl_protected=True)
GET_MISSING_EVENTS = Endpoint(
    "get_missing_events", "POST", FED_V1 + "/get_missing_events/{roomId}", acl_protected=True
)
# #get_matrixfederationv1timestamp_to_eventroomid: not in the spec's ACL-protected list.
TIMESTAMP_TO_EVENT = Endpoint("timestamp_to_event", "GET", FED_V1 + "/timestamp_to_event/{roomId}")

# --- membership (#joining-rooms, #knocking-rooms, #inviting-to-a-room,
# #leaving-rooms-rejecting-invites) -----------------------------------------------------------
MAKE_JOIN = Endpoint(
    "make_join", "GET", FED_V1 + "/make_join/{roomId}/{userId}", acl_protected=True
)
SEND_JOIN = Endpoint(
    "send_join", "PUT", FED_V2 + "/send_join/{roomId}/{eventId}", acl_protected=True
)
MAKE_KNOCK = Endpoint(
    "make_knock", "GET", FED_V1 + "/make_knock/{roomId}/{userId}", acl_protected=True
)
SEND_KNOCK = Endpoint(
    "send_knock", "PUT", FED_V1 + "/send_knock/{roomId}/{eventId}", acl_protected=True
)
INVITE = Endpoint("invite", "PUT", FED_V2 + "/invite/{roomId}/{eventId}", acl_protected=True)
MAKE_LEAVE = Endpoint(
    "make_leave", "GET", FED_V1 + "/make_leave/{roomId}/{userId}", acl_protected=True
)
SEND_LEAVE = Endpoint(
    "send_leave", "PUT", FED_V2 + "/send_leave/{roomId}/{eventId}", acl_protected=True
)

# --- directory, spaces, queries (#published-room-directory, #spaces,
# #querying-for-information) ------------------------------------------------------------------
PUBLIC_ROOMS = Endpoint("public_rooms", "GET", FED_V1 + "/publicRooms")
PUBLIC_ROOMS_POST = Endpoint("public_rooms_post", "POST", FED_V1 + "/publicRooms")
HIERARCHY = Endpoint("hierarchy", "GET", FED_V1 + "/hierarchy/{roomId}")
QUERY_PROFILE = Endpoint("query_profile", "GET", FED_V1 + "/query/profile")
QUERY_DIRECTORY = Endpoint("query_directory", "GET", FED_V1 + "/query/directory")
# Any other query type: answered 404 M_UNRECOGNIZED (registered after the known types).
QUERY = Endpoint("query", "GET", FED_V1 + "/query/{queryType}")

# --- devices and end-to-end keys (#device-management, #end-to-end-encryption) --------------
USER_DEVICES = Endpoint("user_devices", "GET", FED_V1 + "/user/devices/{userId}")
USER_KEYS_QUERY = Endpoint("user_keys_query", "POST", FED_V1 + "/user/keys/query")
USER_KEYS_CLAIM = Endpoint("user_keys_claim", "POST", FED_V1 + "/user/keys/claim")

# --- content repository (#content-repository) ----------------------------------------------
MEDIA_DOWNLOAD = Endpoint("media_download", "GET", FED_V1 + "/media/download/{mediaId}")
MEDIA_THUMBNAIL = Endpoint("media_thumbnail", "GET", FED_V1 + "/media/thumbnail/{mediaId}")
# Called only: the deprecated client-server download a server without the federation media
# endpoints still answers (https://spec.matrix.org/v1.16/client-server-api/#content-repository).
LEGACY_MEDIA_DOWNLOAD = Endpoint(
    "legacy_media_download", "GET", "/_matrix/media/v3/download/{serverName}/{mediaId}"
)

# --- OpenID (#openid): asked by third parties with a user's OpenID token, not signed -------
OPENID_USERINFO = Endpoint("openid_userinfo", "GET", FED_V1 + "/openid/userinfo", signed=False)

# --- Parta's own endpoints on the federation listener ---------------------------------------
PARTA_STATS = Endpoint("parta_stats", "GET", "/_parta/v1/stats")
PARTA_ROSTER_HINT = Endpoint("parta_roster_hint", "PUT", "/_parta/v1/roster_hint")
# On the gateway: the city staff directory, searched by nodes (docs/people.md).
PARTA_STAFF = Endpoint("parta_staff", "GET", "/_parta/v1/staff")

ENDPOINTS: tuple[Endpoint, ...] = (
    VERSION,
    KEY_SERVER,
    KEY_SERVER_SLASH,
    KEY_SERVER_KEY_ID,
    KEY_QUERY,
    KEY_QUERY_SERVER,
    SEND,
    EVENT,
    STATE,
    STATE_IDS,
    EVENT_AUTH,
    BACKFILL,
    GET_MISSING_EVENTS,
    TIMESTAMP_TO_EVENT,
    MAKE_JOIN,
    SEND_JOIN,
    MAKE_KNOCK,
    SEND_KNOCK,
    INVITE,
    MAKE_LEAVE,
    SEND_LEAVE,
    PUBLIC_ROOMS,
    PUBLIC_ROOMS_POST,
    HIERARCHY,
    QUERY_PROFILE,
    QUERY_DIRECTORY,
    QUERY,
    USER_DEVICES,
    USER_KEYS_QUERY,
    USER_KEYS_CLAIM,
    MEDIA_DOWNLOAD,
    MEDIA_THUMBNAIL,
    LEGACY_MEDIA_DOWNLOAD,
    OPENID_USERINFO,
    PARTA_STATS,
    PARTA_ROSTER_HINT,
    PARTA_STAFF,
)

# The server ACL prefixes, from the table (see the module docstring).
ACL_PROTECTED_PREFIXES: tuple[str, ...] = tuple(
    dict.fromkeys(ep.acl_prefix for ep in ENDPOINTS if ep.acl_protected)
)
