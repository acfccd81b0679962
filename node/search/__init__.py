"""Server-side search of room events (client-server API "Server Side Search",
https://spec.matrix.org/v1.16/client-server-api/#server-side-search)."""
