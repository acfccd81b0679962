"""The city directory (docs/architecture.md "City services on the gateway").

* ``schools``: every school the gateway knows, with its enrolment status, searchable
  (``directory_entries``, ``search``; used by the API, the CLI and the dashboard).
* ``gatherer``: what the gateway gathers from each enrolled school over federation --
  its public rooms (``publicRooms``) and the counts and directors it publishes
  (``/_parta/v1/stats``) -- periodically and on demand, cached with the time gathered.
* ``rooms``: the public rooms of all schools (and the gateway's own) as one searchable,
  paginated room directory.
* ``api``: the gateway's client-API room directory (``publicRooms``) and
  ``/_parta/v1/directory/rooms``.
* ``directors``: inviting the directors each school announces to the city rooms.
"""

from .schools import MAX_QUERY, directory_entries, search

__all__ = ["MAX_QUERY", "directory_entries", "search"]
