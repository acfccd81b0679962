"""Node configuration: a YAML file written by ``parta node init`` and read by every subcommand.

Every key has a sane default, so a config file only needs what differs.  ``load_config`` turns
mistakes (unknown keys, wrong types) into one clear ``ConfigError`` naming the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, overload

import yaml

from federation.errors import MatrixError
from federation.transport.dns_srv import parse_dns_server
from federation.transport.ip_ranges import DEFAULT_IP_RANGE_BLACKLIST, AddressFilter, InvalidIpRange


class ConfigError(Exception):
    pass


@dataclass
class ListenerConfig:
    bind_address: str = "127.0.0.1"
    port: int = 8008
    tls_certificate_path: str | None = None
    tls_private_key_path: str | None = None


@dataclass
class RateLimitConfig:
    enabled: bool = True
    per_second: float = 10.0  # sustained requests/s per user on rate-limited endpoints
    burst_count: int = 50
    login_per_second: float = 1.0  # login/register/token validity attempts/s per client IP
    login_burst_count: int = 30


@dataclass
class MediaConfig:
    max_upload_bytes: int = 50 * 1024 * 1024
    per_user_quota_bytes: int = 1024 * 1024 * 1024
    max_thumbnail_pixels: int = 32_000_000  # pixels decoded per thumbnail, more: 413
    thumbnail_memory_bytes: int = 256 * 1024 * 1024  # est. memory of thumbnails made at once
    thumbnail_concurrency: int = 2  # thumbnails made at once; the rest queue
    thumbnail_queue: int = 64  # thumbnails waiting; more: 429 M_LIMIT_EXCEEDED
    thumbnail_sizes: list[list[int]] = field(
        default_factory=lambda: [[32, 32], [96, 96], [320, 240], [640, 480], [800, 600]]
    )
    # Deprecated unauthenticated downloads (/_matrix/media/v3/download|thumbnail): off,
    # 404 M_NOT_FOUND ("freezing" in client-server API "Content repository").
    legacy_unauthenticated: bool = False
    max_pending_uploads: int = 10  # media IDs a user holds from POST /media/v1/create
    # URL previews (GET .../preview_url): off; when on, the node fetches the pages users
    # name, only at addresses outside these ranges (as push gateways: ip_ranges.py).
    url_previews: bool = False
    url_preview_ip_range_blacklist: list = field(
        default_factory=lambda: list(DEFAULT_IP_RANGE_BLACKLIST)
    )
    url_preview_ip_range_whitelist: list = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            AddressFilter(
                self.url_preview_ip_range_blacklist or (),
                self.url_preview_ip_range_whitelist or (),
                setting="media.url_preview_ip_range",
            )
        except InvalidIpRange as exc:
            raise ConfigError(str(exc)) from None


@dataclass
class RegistrationConfig:
    open_registration: bool = False  # schools don't run open registration
    password_min_length: int = 8


@dataclass
class EmailConfig:
    """E-mail for contact addresses and password resets (node/accounts/threepid*.py)."""

    smtp_host: str = ""  # empty: no e-mail; the e-mail 3PID endpoints answer "not supported"
    smtp_port: int = 25
    smtp_security: str = "starttls"  # starttls (required) | tls (implicit, port 465) | none
    smtp_user: str = ""  # empty: no SMTP login
    smtp_password: str = ""
    smtp_timeout_s: float = 10.0  # connecting and talking to the SMTP server, per mail
    from_address: str = ""  # the From: of mails; empty: Parta <noreply@<server_name>>
    registration: bool = False  # registration also asks for a validated e-mail address
    token_lifetime_s: int = 3600  # how long a mailed validation code stays valid

    def __post_init__(self) -> None:
        if self.smtp_security not in ("starttls", "tls", "none"):
            raise ConfigError("email.smtp_security: must be starttls, tls or none")


@dataclass
class PresenceConfig:
    """Presence (client-server API "Presence"; node/sync/presence.py): off by default, and
    when on only the presence of these roles is shared with users in a common room."""

    enabled: bool = False
    roles: list = field(default_factory=lambda: ["director", "teacher"])
    idle_ms: int = 300_000  # no pro-active action for this long: unavailable
    offline_ms: int = 90_000  # no /sync running and none for this long: offline


@dataclass
class VoipConfig:
    """TURN credentials for calls (client-server API "Voice over IP", ``GET
    /voip/turnServer``; node/accounts/api/turn.py), in the TURN REST API scheme coturn's
    ``use-auth-secret`` checks.  No URIs or no secret: no TURN server is offered."""

    turn_uris: list = field(default_factory=list)  # e.g. ["turn:turn.school.example:3478"]
    turn_shared_secret: str = ""  # coturn's static-auth-secret
    turn_user_lifetime_s: int = 86_400  # how long handed-out credentials stay valid

    def __post_init__(self) -> None:
        for uri in self.turn_uris:
            if not isinstance(uri, str) or not uri.startswith(("turn:", "turns:")):
                raise ConfigError(f"voip.turn_uris: {uri!r} is not a turn: or turns: URI")
        if self.turn_user_lifetime_s <= 0:
            raise ConfigError("voip.turn_user_lifetime_s: must be positive")


@dataclass
class SupportConfig:
    """``/.well-known/matrix/support`` (client-server API "Getting the support information
    of a server"): who runs the school's server.  Neither set: 404."""

    contacts: list = field(default_factory=list)  # [{matrix_id|email_address, role}]
    page: str = ""  # support_page URL

    def __post_init__(self) -> None:
        for i, contact in enumerate(self.contacts):
            where = f"support.contacts[{i}]"
            if not isinstance(contact, dict) or not isinstance(contact.get("role"), str):
                raise ConfigError(f"{where}: a mapping with a role (e.g. m.role.admin)")
            if not (contact.get("matrix_id") or contact.get("email_address")):
                raise ConfigError(f"{where}: needs matrix_id or email_address")
            unknown = set(contact) - {"matrix_id", "email_address", "role"}
            if unknown or not all(isinstance(v, str) for v in contact.values()):
                raise ConfigError(f"{where}: matrix_id, email_address and role are strings")


@dataclass
class AuthConfig:
    """Access token lifetime for clients that ask for refresh tokens (client-server API
    "Refreshing access tokens"; node/accounts/refresh.py)."""

    access_token_lifetime_ms: int = 300_000  # only tokens issued with a refresh token expire


@dataclass
class PushConfig:
    """Push notifications (client-server API "Push Notifications"; node/push)."""

    enabled: bool = True  # false: no push rule evaluation, no pushes (sync's own counts)
    max_pushers_per_user: int = 10
    notifications_kept_days: int = 30  # GET /notifications history; older rows are deleted
    # The push gateways pushers name are reached only at addresses outside these ranges
    # (as for outbound federation: federation.transport.ip_ranges), unless whitelisted.
    ip_range_blacklist: list = field(default_factory=lambda: list(DEFAULT_IP_RANGE_BLACKLIST))
    ip_range_whitelist: list = field(default_factory=list)  # e.g. a gateway on loopback

    def __post_init__(self) -> None:
        try:
            AddressFilter(
                self.ip_range_blacklist or (),
                self.ip_range_whitelist or (),
                setting="push.ip_range",
            )
        except InvalidIpRange as exc:
            raise ConfigError(str(exc)) from None


@dataclass
class FederationConfig:
    """Server-server API (spec: server-server API; node/federation)."""

    enabled: bool = True  # false: no federation listener, no outbound federation
    listener: ListenerConfig = field(default_factory=lambda: ListenerConfig(port=8448))
    tls_ca_file: str | None = None  # CA bundle for outbound TLS; null = the system store
    insecure_skip_tls_verify: bool = False  # loopback tests only: no outbound cert checks
    server_overrides: dict = field(default_factory=dict)  # server name -> "host:port"
    dns_server: str | None = None  # "<ip>:<port>" for SRV look-ups; null = the system's DNS
    key_validity_ms: int = 24 * 3600 * 1000  # valid_until_ts of our published keys
    old_signing_keys_path: str = ""  # default: <data_dir>/old_signing_keys.json
    notary_servers: list = field(default_factory=list)  # [{server_name, verify_keys: {id: key}}]
    presence: bool = False  # m.presence EDUs are ignored while off
    max_missing_events: int = 20  # prev_events fetched with get_missing_events per PDU
    verify_threads: int | None = None  # event signature threads; null = one per core (<= 4)
    share_device_names: bool = False  # device display names in federation user/devices
    roster: str = "auto"  # city roster: auto (if enrolled) | required | off
    roster_refresh_seconds: float = 60.0  # how often an enrolled node asks the gateway
    # Outbound federation never connects to these (CIDR ranges; the default: loopback,
    # private, CGNAT, link-local, unique-local, multicast, reserved), checked on every
    # resolved address; federation.transport.ip_ranges.  Synapse's names.
    ip_range_blacklist: list = field(default_factory=lambda: list(DEFAULT_IP_RANGE_BLACKLIST))
    ip_range_whitelist: list = field(default_factory=list)  # exceptions to the blacklist

    def __post_init__(self) -> None:
        # A typo in a range must stop the node at start-up, not open or close federation.
        try:
            AddressFilter(self.ip_range_blacklist or (), self.ip_range_whitelist or ())
        except InvalidIpRange as exc:
            raise ConfigError(str(exc)) from None
        if self.dns_server is not None:
            try:
                parse_dns_server(self.dns_server)
            except MatrixError as exc:
                raise ConfigError(exc.message) from None


@dataclass
class Config:
    server_name: str = "localhost"
    data_dir: str = "."
    database_url: str = ""  # default: sqlite:///<data_dir>/node.db
    signing_key_path: str = ""  # default: <data_dir>/signing.key
    public_baseurl: str = ""  # default: http://<bind>:<port>/
    client_listener: ListenerConfig = field(default_factory=ListenerConfig)
    metrics_listener: ListenerConfig = field(default_factory=lambda: ListenerConfig(port=9108))
    max_request_body_bytes: int = 1024 * 1024
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    presence: PresenceConfig = field(default_factory=PresenceConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    voip: VoipConfig = field(default_factory=VoipConfig)
    support: SupportConfig = field(default_factory=SupportConfig)
    default_room_version: str = "12"
    federation: FederationConfig = field(default_factory=FederationConfig)
    push: PushConfig = field(default_factory=PushConfig)
    log_level: str = "INFO"
    extensions: dict = field(default_factory=dict)  # raw sections of other packages (gateway:)

    @property
    def media_dir(self) -> str:
        return os.path.join(self.data_dir, "media")

    @overload
    def _in_data_dir(self, path: str) -> str: ...

    @overload
    def _in_data_dir(self, path: str | None) -> str | None: ...

    def _in_data_dir(self, path: str | None) -> str | None:
        if not path or os.path.isabs(path):
            return path
        return os.path.join(self.data_dir, path)

    def resolved(self) -> "Config":
        """Fill derived defaults (paths relative to the data dir)."""
        if not self.database_url:
            self.database_url = "sqlite:///" + os.path.join(self.data_dir, "node.db")
        if not self.signing_key_path:
            self.signing_key_path = os.path.join(self.data_dir, "signing.key")
        fed = self.federation
        if not fed.old_signing_keys_path:
            fed.old_signing_keys_path = "old_signing_keys.json"
        # Relative federation file paths are relative to the data dir.
        fed.old_signing_keys_path = self._in_data_dir(fed.old_signing_keys_path)
        fed.listener.tls_certificate_path = self._in_data_dir(fed.listener.tls_certificate_path)
        fed.listener.tls_private_key_path = self._in_data_dir(fed.listener.tls_private_key_path)
        fed.tls_ca_file = self._in_data_dir(fed.tls_ca_file)
        if not self.public_baseurl:
            client = self.client_listener
            scheme = "https" if client.tls_certificate_path else "http"
            self.public_baseurl = f"{scheme}://{client.bind_address}:{client.port}/"
        return self


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            raise ConfigError(f"{path}{key}: unknown setting (known: {', '.join(sorted(known))})")
        default = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(default):
            kwargs[key] = _build(type(default), value, f"{path}{key}.")
        else:
            kwargs[key] = _check_type(f"{path}{key}", str(f.type), value)
    return cls(**kwargs)


_TYPE_NAMES = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "list": "a list",
    "dict": "a mapping",
}


def _check_type(name: str, type_name: str, value: Any) -> Any:
    """Reject a value of the wrong type with a message naming the setting."""
    optional = type_name.endswith("| None")
    base = type_name.split("|")[0].strip().split("[")[0]
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name}: must be {_TYPE_NAMES.get(base, base)}, not null")
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "list": lambda v: isinstance(v, list),
        "dict": lambda v: isinstance(v, dict),
    }.get(base)
    if ok is not None and not ok(value):
        raise ConfigError(
            f"{name}: must be {_TYPE_NAMES[base]}, got {type(value).__name__} {value!r}"
        )
    return float(value) if base == "float" else value


def load_config(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    # Top-level sections other packages declare (entry-point group ``parta.config_sections``)
    # are kept raw in ``extensions``; any other unknown key is still refused.
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="parta.config_sections")}
    raw = {k: data.pop(k) for k in list(data) if k in names} if isinstance(data, dict) else {}
    cfg = _build(Config, data, "")
    cfg.extensions = {**(cfg.extensions if isinstance(cfg.extensions, dict) else {}), **raw}
    if not os.path.isabs(cfg.data_dir):
        cfg.data_dir = os.path.normpath(
            os.path.join(os.path.dirname(os.path.abspath(path)), cfg.data_dir)
        )
    return cfg.resolved()
