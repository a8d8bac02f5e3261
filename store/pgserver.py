"""A throwaway PostgreSQL server for tests and benchmarks, on 127.0.0.1 and a free port.

It runs the server binaries of the local PostgreSQL installation (/usr/lib/postgresql/*/bin)
in a temporary folder, with fsync off because its data is thrown away. initdb and pg_ctl
refuse to run as root, so as root it runs them as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL server in a temporary folder; `start()` returns its URL."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(binaries[-1]).parent
        self.run_as_postgres = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="scalelab-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.started = False
        if self.run_as_postgres:
            try:
                shutil.chown(self.folder, user="postgres")
            except (LookupError, OSError):
                shutil.rmtree(self.folder, ignore_errors=True)
                raise

    def _run(self, command: str) -> None:
        argv = ["su", "postgres", "-c", command] if self.run_as_postgres else ["bash", "-c", command]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{command!r} failed: {result.stdout}{result.stderr}".strip())

    def start(self) -> str:
        self._run(f"{self.bin}/initdb -D {self.data} -A trust -U postgres --no-sync")
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(f"{self.bin}/pg_ctl -D {self.data} -o '{options}' -l {self.folder}/log -w start")
        self.started = True
        logger.info("started throwaway PostgreSQL on 127.0.0.1:%d in %s", self.port, self.folder)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            if self.started:
                self._run(f"{self.bin}/pg_ctl -D {self.data} -m immediate -w stop")
                logger.info("stopped throwaway PostgreSQL on 127.0.0.1:%d", self.port)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a throwaway server, yield its URL, then stop it and delete its files.

    Raises RuntimeError (or OSError) when no server can be started.
    """
    server = ThrowawayPostgres()
    try:
        yield server.start()
    finally:
        server.stop()
