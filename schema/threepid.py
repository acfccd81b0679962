"""Third-party identifiers, their validation sessions and account restrictions.

Client-server API sections "Adding Account Administrative Contact Information"
(``user_threepids``: the e-mail addresses a homeserver keeps for password resets),
"Email-based (identity / homeserver)" (``threepid_validation_sessions``: the sessions a
``requestToken`` call opens, with the mailed token stored only as its SHA-256 hex digest)
and "Account moderation" (``account_restrictions``: locked and suspended accounts).
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from .meta import metadata

user_threepids = Table(
    "user_threepids",
    metadata,
    Column("medium", String(16), nullable=False),  # "email"
    Column("address", String(320), nullable=False),  # normalised (domain lower-cased)
    Column("user_id", String(255), nullable=False),
    Column("validated_at", BigInteger, nullable=False),
    Column("added_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("medium", "address"),  # one account per address
)
Index("ix_user_threepids_user", user_threepids.c.user_id)

threepid_validation_sessions = Table(
    "threepid_validation_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),  # the ``sid`` handed to the client
    Column("medium", String(16), nullable=False),
    Column("address", String(320), nullable=False),
    Column("client_secret", String(255), nullable=False),
    Column("purpose", String(16), nullable=False),  # register | password | add
    Column("send_attempt", BigInteger, nullable=False),
    Column("next_link", Text, nullable=True),
    Column("token_hash", String(64), nullable=False),  # sha256 hex of the mailed token
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("usable", Boolean, nullable=False, default=True),  # false: a notice, no token
    Column("created_ts", BigInteger, nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    Column("validated_ts", BigInteger, nullable=True),
)
Index(
    "ix_threepid_sessions_secret",
    threepid_validation_sessions.c.client_secret,
    threepid_validation_sessions.c.address,
)
Index("ix_threepid_sessions_expires", threepid_validation_sessions.c.expires_ts)

account_restrictions = Table(
    "account_restrictions",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("locked", Boolean, nullable=False, default=False),
    Column("suspended", Boolean, nullable=False, default=False),
    Column("updated_ts", BigInteger, nullable=False),
    Column("updated_by", String(255), nullable=True),
)
