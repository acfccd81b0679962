"""The node's federation area (server-server API): listener, key endpoints, X-Matrix
request authentication, inbound transactions and PDUs, state storage, read endpoints.

``wiring.wire(ctx, ...)`` builds it; the outbound sender and the membership handshakes
plug in through ``context.FederationContext``.
"""
