"""Fixtures for the city e2e tests (harness: city_harness.py).

Imported by the test modules (``from city_fixtures import city_ca, city``) -- this folder
has no conftest.py for the reason tests/e2e/federation/fed_fixtures.py gives (a nested
conftest.py shadows tests/e2e/conftest.py, which tests/e2e/test_demo.py imports by name).
Everything under tests/e2e is marked ``e2e`` by tests/e2e/conftest.py.

- ``city_ca`` (session): the test CA of every federation certificate here.
- ``city`` (module): a ``City`` (gateway started by the test module's own fixture); every
  process is stopped at module end and must exit 0.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from city_harness import City, TestCA


@pytest.fixture(scope="session")
def city_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(str(tmp_path_factory.mktemp("city-ca")))


@pytest.fixture(scope="module")
def city(city_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    c = City(str(tmp_path_factory.mktemp("city")), city_ca)
    yield c
    failures = c.stop()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
