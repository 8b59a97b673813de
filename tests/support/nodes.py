"""A real node for tests and benchmarks: its data directory (SQLite file or a PostgreSQL database, filesystem
blobs, the session-wide test PKI as trust) and a real `dmp serve` process on 127.0.0.1, ended by PID.

Kept out of ``conftest.py`` so that test modules import it by a name no other directory's conftest shadows."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pg import PostgresServer
from vihf_client import ALICE, BOB, identities
from xds_factory import OTHER_PATIENT, PATIENT, REPOSITORY_ID

from consent import DossierAdmin, Guard
from pki import Credential, PsIdentity
from registry import Registry, Store
from server._config import Config

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_node(data_dir: Path, *, patients: tuple[str, ...] = (PATIENT, OTHER_PATIENT),
              database_url: str | None = None, metadata_profile: str = "dmp",
              authorized: tuple[PsIdentity, ...] = (ALICE, BOB), partitions: int = 0) -> Config:
    """A node whose trust is the session-wide test PKI (VIHF required; TLS files set for ``--tls``), with a
    DMP for each of ``patients`` on which the ``authorized`` professionals are authorised. ``partitions``:
    PostgreSQL's registry_object hash-partitioned by patient (``dmp init --partitions``)."""
    ids = identities()
    cfg = replace(Config.new(data_dir, repository_unique_id=REPOSITORY_ID, database_url=database_url),
                  trust_anchors=ids.trust_anchors, crls=ids.crls, tls_cert=str(ids.server_chain),
                  tls_key=str(ids.server.key_path), tls_client_ca=str(ids.ca_bundle),
                  metadata_profile=metadata_profile)
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg.save()
    cfg.blob_dir.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.database_url)
    store.migrate(partitions=partitions)
    admin = DossierAdmin(Registry(store), Guard(store))
    for p in patients:
        admin.create(p)
        for ps in authorized:
            admin.authorize(p, ps.idnat_ps)   # the professional collected the patient's consent (R19)
    store.dispose()
    return cfg


@dataclass
class RunningNode:
    config: Config
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    tls: bool = False
    tls_context: ssl.SSLContext | None = None   # default client context for a node not using the test PKI

    def client(self, cert: Credential | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this node; over TLS it presents ``cert`` (default: ALICE's authentication
        certificate) and verifies the server with the test PKI's CA bundle."""
        if not self.tls:
            return httpx.Client(timeout=kwargs.pop("timeout", 60), **kwargs)
        context = self.tls_context if cert is None and self.tls_context is not None else tls_client_context(cert)
        return httpx.Client(verify=context, timeout=kwargs.pop("timeout", 60), **kwargs)

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


def start_node(cfg: Config, *extra: str, tls_context: ssl.SSLContext | None = None) -> RunningNode:
    """`dmp serve` on a free port; with ``--tls``, health is polled over mTLS (``tls_context``, default: ALICE
    of the session-wide test PKI)."""
    port = free_port()
    log = cfg.data_dir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--data", str(cfg.data_dir), "--port", str(port),
             "--log-level", "warning", *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )
    tls = "--tls" in extra
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    running = RunningNode(cfg, url, proc, log, tls, tls_context)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            with running.client(timeout=1) as client:
                if client.get(f"{url}/health").status_code == 200:
                    return running
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def tls_client_context(cert: Credential | None = None) -> ssl.SSLContext:
    """TLS client context: ``cert`` (default ALICE's authentication certificate) as client certificate, the
    test PKI's CA bundle to verify the server."""
    ids = identities()
    cert = cert or ids.alice.authentication
    context = ssl.create_default_context(cafile=str(ids.ca_bundle))
    context.load_cert_chain(str(cert.certificate_path), str(cert.key_path))
    return context


def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """None (the node's default SQLite file) or a fresh, empty PostgreSQL database (``postgresql`` or
    ``postgresql-partitioned``: the schema is the caller's to make)."""
    if backend == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("shared_postgres")
    name = f"node_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host={server.root} user=app dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://app@/{name}?host={server.root}"
