"""``python -m schema.migrations "message"``: autogenerate a new revision (review it!)."""

import sys

from schema.migrations import make_revision

if len(sys.argv) != 2:
    sys.exit('usage: python -m schema.migrations "what changed"')
print(make_revision(sys.argv[1]))
