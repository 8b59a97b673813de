"""Shared fixtures: a real node (SQLite file + filesystem blobs) served by a real `dmp serve` process on
127.0.0.1, started per test module and ended by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from xds_factory import OTHER_PATIENT, PATIENT, REPOSITORY_ID

from registry import Registry, Store
from server._config import Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_node(data_dir: Path, *, patients: tuple[str, ...] = (PATIENT, OTHER_PATIENT),
              database_url: str | None = None) -> Config:
    cfg = Config.new(data_dir, repository_unique_id=REPOSITORY_ID, database_url=database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg.save()
    cfg.blob_dir.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.database_url)
    store.migrate()
    registry = Registry(store)
    for p in patients:
        registry.create_patient(p)
    store.dispose()
    return cfg


@dataclass
class RunningNode:
    config: Config
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def repository(self) -> str:
        return f"{self.url}/xds/repository"

    @property
    def registry(self) -> str:
        return f"{self.url}/xds/registry"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=30)


def start_node(cfg: Config, *extra: str) -> RunningNode:
    port = free_port()
    log = cfg.data_dir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--data", str(cfg.data_dir), "--port", str(port),
             "--log-level", "warning", *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return RunningNode(cfg, url, proc, log)
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    cfg = make_node(tmp_path_factory.mktemp("node"))
    running = start_node(cfg)
    yield running
    running.stop()
