"""Content repository tables (client-server API "Content repository").

``local_media`` holds one row per ``mxc://<our server>/<media_id>`` upload; the bytes live on disk
in the content-addressed store under ``config.media_dir`` keyed by ``sha256`` (identical uploads
share one file).  ``media_thumbnails`` caches generated thumbnails, whose bytes are stored the
same way.
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

local_media = Table(
    "local_media",
    metadata,
    Column("media_id", String(64), primary_key=True),
    Column("user_id", String(255), nullable=False),  # uploader (quota accounting)
    Column("content_type", String(255), nullable=False),
    Column("upload_name", Text, nullable=True),  # ?filename= of the upload
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),  # key into the on-disk store
    Column("created_ts", BigInteger, nullable=False),
)
Index("ix_local_media_user", local_media.c.user_id)

media_thumbnails = Table(
    "media_thumbnails",
    metadata,
    Column("media_id", String(64), nullable=False),
    Column("width", Integer, nullable=False),  # the snapped request box
    Column("height", Integer, nullable=False),
    Column("method", String(16), nullable=False),  # "crop" | "scale"
    Column("animated", Boolean, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    PrimaryKeyConstraint("media_id", "width", "height", "method", "animated"),
)
