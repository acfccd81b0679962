"""Client-API features that ask other servers (FED-OUT): remote profiles, remote media."""
