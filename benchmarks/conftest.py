"""A throwaway PostgreSQL cluster for the benchmarks that need one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from kemi import db
from kemi.stack import PostgresCluster
from kemi.stack import free_port


@pytest.fixture(scope="session")
def bench_dsn():
    state = Path(tempfile.mkdtemp(prefix="cloud-pbx-bench-"))
    os.chmod(state, 0o755)
    cluster = PostgresCluster(state, free_port(), durable=False)
    try:
        cluster.start()
        db.migrate(cluster.dsn)
        yield cluster.dsn
    finally:
        cluster.stop()
        shutil.rmtree(state, ignore_errors=True)
