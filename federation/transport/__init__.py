"""Federation transport: the server-server API's HTTPS plumbing and key exchange.

Spec: server-server API "Server discovery", "Authentication", "Retrieving server keys",
"TLS".  This package is the only part of ``federation`` that may use Twisted/treq; the pure
parts (server names, X-Matrix headers, key responses, resolution order, the key ring's
bookkeeping) take injected clocks and HTTP getters so they are unit-testable without I/O.

Modules:

* ``server_names`` - parse/validate ``host[:port]``.
* ``xmatrix``      - build, parse and verify ``Authorization: X-Matrix`` headers.
* ``key_server``   - our ``/_matrix/key/v2/server`` response and notary ``/query`` answers.
* ``key_responses``- validate a server-keys response (self-signature, server name, validity).
* ``keyring``      - cache of remote verify keys, direct and notary fetchers, pinned keys.
* ``resolution``   - server name -> (host, port, Host header, TLS name), ``.well-known``, SRV.
* ``dns_srv``      - the SRV look-ups (``twisted.names``; ``federation.dns_server``).
* ``client``       - ``FederationHttpClient`` (Twisted Agent, pooled, TLS verified, signed).
* ``tls``          - dev certificates and TLS context factories.
* ``errors``       - outbound request failures.
* ``coalesce``     - concurrent callers share one running call (key fetches, .well-known).
* ``service``      - ``build_transport``: all of the above wired from a ``TransportConfig``.
"""
