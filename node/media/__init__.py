"""The content repository (client-server API "Content repository"): upload, authenticated
download and thumbnails, config.  Bytes live on disk, content-addressed, under ``media_dir``."""
