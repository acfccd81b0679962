"""The ``gateway:`` section of a gateway's config file.

A gateway is a node, so its config file is a node config (``node/config.py``) plus this
section.  The node keeps the raw section in ``Config.extensions["gateway"]`` (the section name
is declared in the ``parta.config_sections`` entry-point group); ``gateway_config(config)``
parses it with the node's own strict loader: unknown keys and wrong types are refused with a
message naming the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from node.config import Config, ConfigError, _build

SECTION = "gateway"


@dataclass
class GatewayConfig:
    roster_key_path: str = ""  # default: <data_dir>/roster.key (keep it apart)
    roster_validity_hours: int = 168  # each roster version is valid this long
    roster_refresh_check_seconds: int = 600  # how often the gateway re-signs when half-expired
    enrolment_token_ttl_hours: int = 168  # default lifetime of enrolment tokens
    admin_localpart: str = "office"  # the city office account created by init
    announcements_alias: str = "announcements"  # city-wide read-only room (#alias:server)
    directors_alias: str = "directors"  # the directors' room
    dashboard_enabled: bool = True  # serve the city office dashboard at /dashboard/
    dashboard_session_hours: int = 8  # a dashboard login lasts this long
    directory_refresh_seconds: int = 300  # gather schools' public rooms and counts this often

    def resolved(self, data_dir: str) -> "GatewayConfig":
        if not self.roster_key_path:
            self.roster_key_path = os.path.join(data_dir, "roster.key")
        elif not os.path.isabs(self.roster_key_path):
            self.roster_key_path = os.path.join(data_dir, self.roster_key_path)
        for name in (
            "roster_validity_hours",
            "roster_refresh_check_seconds",
            "enrolment_token_ttl_hours",
            "dashboard_session_hours",
            "directory_refresh_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{SECTION}.{name}: must be a positive integer")
        return self

    @property
    def roster_validity_ms(self) -> int:
        return self.roster_validity_hours * 3600 * 1000

    @property
    def token_ttl_ms(self) -> int:
        return self.enrolment_token_ttl_hours * 3600 * 1000


def gateway_config(config: Config) -> GatewayConfig:
    """Parse the ``gateway:`` section; ``ConfigError`` if it is missing or invalid."""
    raw = config.extensions.get(SECTION)
    if raw is None:
        raise ConfigError(
            f"this config has no '{SECTION}:' section: it is a school node's "
            f"config, not a gateway's (create one with 'parta gateway init')"
        )
    return _build(GatewayConfig, raw, f"{SECTION}.").resolved(config.data_dir)


def render_section(gw: GatewayConfig) -> str:
    """The YAML text of the section (appended to the node config by ``gateway init``)."""
    import inspect
    import json
    import re

    comments = {}
    pattern = re.compile(r"^\s+(\w+)\s*:[^#\n]*#\s*(.+)$")
    for line in inspect.getsource(GatewayConfig).splitlines():
        m = pattern.match(line)
        if m:
            comments[m.group(1)] = m.group(2).strip()
    lines = ["", "# City gateway services (enrolment, signed roster, dashboard).", f"{SECTION}:"]
    for f in fields(gw):
        lines.append(f"  # {comments.get(f.name, f.name.replace('_', ' '))}")
        lines.append(f"  {f.name}: {json.dumps(getattr(gw, f.name))}")
    return "\n".join(lines) + "\n"
