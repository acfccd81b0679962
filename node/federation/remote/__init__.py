"""Client-API features that ask other servers: remote profiles, remote media, remote
backfill and space hierarchies."""
