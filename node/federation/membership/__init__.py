"""Membership handshakes (outbound federation): make/send join, invite, make/send leave as the
resident server and as the joining/inviting/leaving server.  ``wiring.wire`` builds it."""
