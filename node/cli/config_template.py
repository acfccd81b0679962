"""The commented YAML config ``parta node init`` writes.

Generated from the ``Config`` dataclasses so every setting appears, each with a comment (ours
below, else the inline comment in ``node/config.py``).  Values are written as JSON, which is
valid YAML.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from dataclasses import fields, is_dataclass
from typing import Any

from node.config import Config

COMMENTS = {
    "server_name": "The server name in every user ID (@user:<server_name>). Cannot change later.",
    "data_dir": "Directory for the database, signing key and media.",
    "database_url": 'Empty: SQLite at <data_dir>/node.db. PostgreSQL: "postgresql://user:pass@host/db".',
    "signing_key_path": (
        "ed25519 signing key (Synapse key-file format). Empty: <data_dir>/signing.key."
    ),
    "public_baseurl": (
        "URL clients use to reach this node (well-known, login). Empty: from the client listener."
    ),
    "client_listener": "Where the client-server API listens (loopback by default).",
    "metrics_listener": "Where /metrics (Prometheus) and /health listen.",
    "bind_address": "Address to bind (127.0.0.1 = this machine only; 0.0.0.0 = all IPv4).",
    "port": "TCP port.",
    "tls_certificate_path": "PEM certificate (chain) to serve HTTPS; null = plain HTTP.",
    "tls_private_key_path": "PEM private key for the certificate.",
    "max_request_body_bytes": "Largest JSON request body accepted (413 M_TOO_LARGE above).",
    "rate_limits": (
        "Per-user limits on sending, room creation, joins and invites (429 M_LIMIT_EXCEEDED)."
    ),
    "rate_limits.enabled": "false switches all rate limits off (benchmarks only).",
    "burst_count": "Requests a user may make at once before the per_second rate applies.",
    "login_burst_count": "Login/registration attempts a client IP may make at once.",
    "max_upload_bytes": "Largest media upload (413 M_TOO_LARGE above).",
    "per_user_quota_bytes": "Total media bytes one user may store.",
    "thumbnail_sizes": "Thumbnail sizes [width, height] generated for images.",
    "media": "Uploaded files (stored under <data_dir>/media).",
    "registration": "Self-service registration. Schools hand out registration tokens instead.",
    "open_registration": "true lets anyone register without a token (off for schools).",
    "password_min_length": "Shortest password accepted at registration and password change.",
    "default_room_version": "Room version for new rooms (10, 11 or 12).",
    "log_level": "DEBUG, INFO, WARNING or ERROR.",
    "federation": "Server-server API: HTTPS listener, outbound TLS, keys (node/federation).",
    "listener": "Where the federation API listens (HTTPS; other servers reach server_name here).",
    "federation.enabled": (
        "false: no federation listener and no traffic with other servers: events are not "
        "sent to them, and remote joins, invites, profiles, media and space look-ups are "
        "off. An enrolled node still refreshes its city roster from the gateway."
    ),
    "email": (
        "Outgoing e-mail (SMTP): validation codes for contact addresses and password "
        "resets by e-mail. Off while smtp_host is empty."
    ),
    "presence": (
        "Presence (online/away/offline and a status message), kept in memory. Off by "
        "default; when on, only the roles listed are shared, with users in a common room."
    ),
    "presence.enabled": "true shares presence (GET /presence answers 403 while off).",
    "presence.roles": 'Roles whose presence others see, e.g. ["director", "teacher"].',
    "auth": "Access tokens of clients that ask for refresh tokens (refresh_token: true).",
    "voip": (
        "TURN server for calls: clients get short-lived credentials from GET "
        "/voip/turnServer (coturn: use-auth-secret, static-auth-secret = turn_shared_secret)."
    ),
    "support": (
        "Who runs this server, served at /.well-known/matrix/support (404 while empty). "
        'contacts: [{"matrix_id": "@it:school.example", "role": "m.role.admin"}].'
    ),
    "url_previews": (
        "true lets clients ask for link previews: the node fetches the page (1 MiB, 10 s, "
        "addresses outside url_preview_ip_range_blacklist only) and returns its og: title "
        "and description. Off: 404 M_UNRECOGNIZED, the node never fetches a URL users name."
    ),
    "legacy_unauthenticated": (
        "true serves the deprecated unauthenticated /_matrix/media/v3/download and "
        "thumbnail paths; false answers them 404 (media stays private to signed-in users)."
    ),
    "push": (
        "Push notifications: push rules decide unread counts and which events reach the "
        "push gateways of users' phones (POST /pushers/set)."
    ),
    "push.enabled": "false: no push rule evaluation and no pushes (counts use the defaults).",
    "push.max_pushers_per_user": "Pushers (devices that get pushes) one user may set.",
    "push.notifications_kept_days": (
        "Days the notifications of GET /notifications are kept (one row per member and event)."
    ),
    "push.ip_range_blacklist": (
        "Push gateways are never reached at these IP ranges (CIDR), checked on every "
        "resolved address; the same default as federation.ip_range_blacklist."
    ),
    "push.ip_range_whitelist": (
        "Exceptions to push.ip_range_blacklist, e.g. a push gateway on the school network."
    ),
    "ip_range_blacklist": (
        "Outbound federation never connects to these IP ranges (CIDR), checked on every "
        "address a server name, its .well-known or DNS resolves to, before connecting. "
        "Default: loopback, private (RFC 1918), CGNAT, link-local, unique-local, "
        "documentation, multicast and reserved ranges; 0.0.0.0 and :: are always refused."
    ),
    "ip_range_whitelist": (
        "Exceptions to ip_range_blacklist. A city whose schools are on a private network "
        'lists it here (e.g. ["10.20.0.0/16"]); loopback test setups use '
        '["127.0.0.0/8", "::1/128"].'
    ),
}

_WIDTH = 96

_INLINE = re.compile(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$")


def _inline_comments(cls: type) -> dict[str, str]:
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in map(_INLINE.match, source.splitlines()) if m}


def _emit(obj: Any, indent: int, lines: list[str], path: str = "") -> None:
    inline = _inline_comments(type(obj))
    pad = "  " * indent
    for f in fields(obj):
        value = getattr(obj, f.name)
        # A dotted key first: the same field name means different things in different
        # sections (rate_limits.enabled, federation.enabled).
        comment = (
            COMMENTS.get(path + f.name)
            or COMMENTS.get(f.name)
            or inline.get(f.name)
            or f.name.replace("_", " ")
        )
        if is_dataclass(value):
            lines.append("")
            lines += _comment(pad, comment)
            lines.append(f"{pad}{f.name}:")
            _emit(value, indent + 1, lines, f"{path}{f.name}.")
            continue
        lines += _comment(pad, comment)
        line = f"{pad}{f.name}: {json.dumps(value)}"
        if isinstance(value, list) and value and len(line) > _WIDTH:
            # A long list one item a line (YAML block sequence; items as JSON scalars).
            lines.append(f"{pad}{f.name}:")
            lines += [f"{pad}  - {json.dumps(item)}" for item in value]
        else:
            lines.append(line)


def _comment(pad: str, text: str) -> list[str]:
    return [
        f"{pad}# {part}"
        for part in textwrap.wrap(text, _WIDTH - len(pad) - 2, break_on_hyphens=False) or [""]
    ]


def render_config(config: Config) -> str:
    lines = [
        "# Parta node configuration (written by 'parta node init').",
        "# Every setting is listed with its value; see node/config.py for defaults.",
        "",
    ]
    _emit(config, 0, lines)
    return "\n".join(lines) + "\n"
