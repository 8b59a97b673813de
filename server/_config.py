"""The one configuration object. Stored as ``config.json`` in the data directory by ``dmp init``;
command-line options of ``dmp serve`` override it for one run."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

CONFIG_FILE = "config.json"
# An arc under the project's test root: a real deployment passes its own repository OID.
DEFAULT_OID_ARC = "1.2.250.1.999.1.1"


@dataclass(frozen=True)
class Config:
    data_dir: Path
    repository_unique_id: str
    database_url: str
    registry_url: str | None = None          # None: the registry runs in this process
    # Documents (docs/deployment.md): None keeps them in DATA/blobs; "s3://BUCKET[/PREFIX]" in S3-compatible
    # object storage at s3_endpoint_url (None: AWS), credentials from boto3's default chain (AWS_* variables,
    # ~/.aws files, instance role), never from this file. Uploads pending longer than the lease are crashed ones.
    blob_store_url: str | None = None
    s3_endpoint_url: str | None = None
    blob_pending_lease_s: float = 900.0
    # Filesystem store: each document's metadata in an extended attribute of its file where the filesystem has
    # them ("auto"), or always in a sidecar file ("sidecar"; repository._blobstore, issue 13).
    blob_metadata: str = "auto"
    max_soap_bytes: int = 64 * 1024 * 1024   # SOAP part (and plain SOAP body with inline documents)
    # Receiving requests (README "Limits and timeouts"; server._intake, server._http).
    max_request_bytes: int = 2 * 1024**3     # a whole request (MTOM with its documents): HTTP 413 beyond
    max_buffered_bytes: int = 256 * 1024**2  # request bytes held in memory by one process, all requests: 503
    header_timeout_s: float = 10.0           # request headers complete within this (else connection closed)
    body_timeout_s: float = 30.0             # the body must advance by body_min_progress_bytes within this
    body_min_progress_bytes: int = 16 * 1024 #   (else HTTP 408, connection closed)
    keep_alive_s: float = 5.0                # idle connection between two requests
    sqlite_synchronous: str = "FULL"
    max_query_results: int = 1000            # LeafClass objects per stored query (XDSTooManyResults beyond)
    # Security (docs/vihf.md). PEM files of CA certificates: self-signed ones are trust anchors, the others
    # intermediates; CRL files (PEM or DER) from those CAs. Relative paths are relative to data_dir.
    trust_anchors: list[str] = field(default_factory=list)
    crls: list[str] = field(default_factory=list)
    trust_recheck_s: float = 10.0            # how often the trust files are checked for changes (reloaded then)
    require_vihf: bool = True                # False only through `dmp serve --no-vihf` (development)
    require_consent: bool = True             # False only through `dmp serve --no-consent` (benchmarks)
    tls_cert: str | None = None              # server certificate chain (PEM) for `dmp serve --tls`
    tls_key: str | None = None
    tls_client_ca: str | None = None         # CA bundle the TLS client certificates must chain to
    # Notifications to patients (docs/notifications.md). Without a channel they wait in the outbox.
    # Secrets come from the environment only: DMP_SMTP_PASSWORD (with smtp_user), DMP_SMS_API_KEY.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str | None = None           # From: of the e-mails, e.g. "DMP <ne-pas-repondre@example.org>"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_ca_file: str | None = None          # CA certificates STARTTLS verifies the server with (default: system)
    smtp_timeout_s: float = 30.0
    sms_gateway_url: str | None = None       # HTTP gateway: POST {"to": mobile, "text": body}
    sms_timeout_s: float = 10.0
    notification_poll_s: float = 5.0        # how often the outbox is checked for due messages
    notification_retry_initial_s: float = 5.0   # back-off after a failed send, doubling ...
    notification_retry_max_s: float = 600.0     # ... up to this, then retried at this pace (never dropped)
    # Codes registration accepts: "dmp" the DMP value sets, "ihe" IHE's structural rules only
    # (registry.MetadataProfile, docs/conformance.md).
    metadata_profile: str = "dmp"

    @property
    def blob_dir(self) -> Path:
        """The filesystem blob store; with S3 it holds only the spool of requests being received."""
        return self.data_dir / "blobs"

    @property
    def shared_database(self) -> bool:
        """True when the database is a server several nodes share (PostgreSQL), not a file of this node."""
        return not self.database_url.startswith("sqlite")

    def path(self, name: str) -> Path:
        """A configured file path, relative ones resolved against the data directory."""
        return self.data_dir / name

    @classmethod
    def new(cls, data_dir: Path, *, repository_unique_id: str | None = None,
            database_url: str | None = None) -> Config:
        data_dir = data_dir.resolve()
        return cls(
            data_dir=data_dir,
            repository_unique_id=repository_unique_id or f"{DEFAULT_OID_ARC}.{secrets.randbelow(10**9) + 1}.3",
            database_url=database_url or f"sqlite:///{data_dir / 'registry.db'}",
        )

    @classmethod
    def load(cls, data_dir: Path, **overrides: object) -> Config:
        path = data_dir.resolve() / CONFIG_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `dmp init --data {data_dir}` first")
        raw = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in raw.items() if k in known and k != "data_dir"}, data_dir=data_dir.resolve())
        return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "data_dir": str(self.data_dir)})

    @classmethod
    def from_json(cls, text: str) -> Config:
        raw = json.loads(text)
        return cls(**{**raw, "data_dir": Path(raw["data_dir"])})

    def save(self) -> None:
        raw = {k: v for k, v in asdict(self).items() if k != "data_dir"}
        (self.data_dir / CONFIG_FILE).write_text(json.dumps(raw, indent=2) + "\n")
