"""The tests run against a real Berth: BERTH_URL and BERTH_API_KEY name it (the vitest wrapper
test/integration/python-sdk.test.ts starts one and sets them)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from berth import Berth, Sandbox

if not os.environ.get("BERTH_URL"):
    pytest.exit("BERTH_URL is not set: these tests need a running Berth", returncode=2)


@pytest.fixture(scope="session")
def client() -> Iterator[Berth]:
    with Berth() as c:
        yield c


@pytest.fixture(scope="module")
def sandbox(client: Berth) -> Iterator[Sandbox]:
    """One sandbox per test module, deleted at its end."""
    with client.sandboxes.create(
        env={"GREETING": "hello from env"},
        labels={"suite": "python-sdk"},
        working_dir="/tmp",
        limits={"cpus": 1, "memory_mb": 1024, "pids": 256},
        user={"uid": 1000},
        timeout_seconds=600,
    ) as sb:
        yield sb
