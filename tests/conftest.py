"""Makes ``tests/support`` importable as ``support`` from every test directory.

Test directories here are not packages (pytest's default ``prepend`` import mode puts each
test file's own directory on ``sys.path``), so the shared kit needs its parent, ``tests/``,
on the path too.  This conftest is loaded before any test module under ``tests/`` is
imported, whichever directory pytest is pointed at.
"""

from __future__ import annotations

import os
import sys

_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
