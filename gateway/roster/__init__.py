"""The gateway's roster service: stored roster versions, enrolment, revocation, key rotation
and the Synapse export.  See ``service.RosterService``."""

from .export import export_synapse
from .service import DEFAULT_TOKEN_TTL_MS, DEFAULT_VALIDITY_MS, RosterService

__all__ = ["RosterService", "export_synapse", "DEFAULT_VALIDITY_MS", "DEFAULT_TOKEN_TTL_MS"]
