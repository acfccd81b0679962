"""City gateway tables: enrolment and the signed roster (``federation/roster.py``).

``roster_versions`` keeps every signed roster version ever published (the chain is served in
full and never rewritten); ``doc`` is the canonical JSON of the signed document, so the bytes
hash to ``sha256``.  ``schools`` is the city office's directory of schools and other servers
with their enrolment status (the roster itself is the truth about who is a member).
``enrolment_tokens`` holds one-time tokens: only the *verifier* derived from the secret
(``federation.enrolment.token_verifier``), never the secret.
"""

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text

from .meta import metadata

roster_versions = Table(
    "roster_versions",
    metadata,
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("sha256", String(64), nullable=False, unique=True),  # roster_hash(doc)
    Column("prev_sha256", String(64), nullable=True),  # null for version 1
    Column("issued_ts", BigInteger, nullable=False),
    Column("valid_until_ts", BigInteger, nullable=False),
    Column("signer_key_id", String(64), nullable=False),  # ed25519:roster_<n>
    Column("server_count", BigInteger, nullable=False),
    Column("doc", Text, nullable=False),  # canonical JSON, signed
)

schools = Table(
    "schools",
    metadata,
    Column("school_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("district", String(255), nullable=False, default=""),
    Column("server_class", String(16), nullable=False, default="school"),
    Column("server_name", String(255), nullable=True, unique=True),  # set on enrolment
    Column("status", String(16), nullable=False),  # pending|enrolled|revoked
    Column("created_ts", BigInteger, nullable=False),
    Column("enrolled_ts", BigInteger, nullable=True),
    Column("revoked_ts", BigInteger, nullable=True),
    Column("updated_ts", BigInteger, nullable=False),
)

enrolment_tokens = Table(
    "enrolment_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("verifier", String(64), nullable=False),  # token_verifier(secret)
    Column(
        "school_id", String(64), ForeignKey("schools.school_id", ondelete="CASCADE"), nullable=False
    ),
    Column("created_ts", BigInteger, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    Column("used_ts", BigInteger, nullable=True),  # set once: one-time
    Column("used_by", String(255), nullable=True),  # server name, or "revoked"
)
Index("ix_enrolment_tokens_school", enrolment_tokens.c.school_id)
