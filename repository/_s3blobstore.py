"""S3 blob store: the documents of a repository served by several nodes, in S3-compatible object storage
(docs/deployment.md).

Layout under ``s3://BUCKET/PREFIX/``:

- ``docs/<h[:2]>/<h>/<attempt>``: one object per storage *attempt* of a document, ``h`` the SHA-256 of its
  uniqueId, ``attempt`` a random id; user metadata holds the uniqueId, mimeType and SHA-1 ITI-43 answers with.
- ``pending/<h>.<attempt>``: the attempt's pending marker (its body is the uniqueId), written *before* the
  upload starts and deleted once the registry has committed.

An attempt is visible to :meth:`S3BlobStore.get` only without its marker; a multipart upload not completed is
not an object at all. So whatever instant a node dies at, no other node serves a document the registry did not
register. Each attempt has a key of its own, so two nodes storing the same uniqueId at once never overwrite
or remove each other's object (the registry then accepts one registration, and the other attempt is removed).

Recovery (:meth:`S3BlobStore.recover`, at the start-up of any node) removes the attempts whose marker is older
than the *lease* and whose uniqueId the registry does not know, and aborts multipart uploads older than the
lease. A node renews its marker while it uploads, so an upload still in progress on another node is never
taken for a crashed one; the lease must exceed the time between two renewals plus the registration (default
15 min) and the nodes' clocks must agree with the object store's (NTP).

Uploads are multipart from the spool file the MTOM decoder wrote (which already computed the SHA-1 and size),
one part in memory at a time; downloads are streamed in chunks as the ITI-43 answer is sent."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from repository._blobstore import CHUNK, BlobInfo, BlobStoreUnavailable, PendingBlob

log = logging.getLogger(__name__)
PART_SIZE = 8 * 1024 * 1024     # S3's minimum part is 5 MiB; 10 000 parts x 8 MiB = 78 GiB per document
_S3_ERRORS = (BotoCoreError, ClientError)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str   # "" or "some/prefix/" (always ending with a slash)

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://BUCKET[/PREFIX]``; ValueError naming what is wrong otherwise."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"blob store URL {url!r} is not s3://BUCKET[/PREFIX]")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


def s3_client(endpoint_url: str | None, *, max_connections: int = 32) -> Any:
    """A client whose credentials and region come from boto3's default chain (AWS_* variables, shared
    credentials and config files, instance roles): never from config.json."""
    config = BotoConfig(max_pool_connections=max_connections, retries={"max_attempts": 3, "mode": "standard"},
                        connect_timeout=5, read_timeout=60,
                        # checksums only where the operation requires one: S3-compatible stores differ
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required")
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


class S3BlobStore:
    """A :class:`~repository.BlobStore` in S3-compatible object storage; ``spool`` stays a local directory."""

    def __init__(self, location: S3Location, spool: Path, *, client: Any, lease_s: float = 900.0,
                 part_size: int = PART_SIZE) -> None:
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 multipart parts are at least 5 MiB")
        self.location = location
        self.spool = spool
        self.spool.mkdir(parents=True, exist_ok=True)
        self.lease_s = lease_s
        self._s3 = client
        self._part_size = part_size

    # --- keys ---------------------------------------------------------------------------------------

    @staticmethod
    def _hash(unique_id: str) -> str:
        return hashlib.sha256(unique_id.encode()).hexdigest()

    def _doc_dir(self, h: str) -> str:
        return f"{self.location.prefix}docs/{h[:2]}/{h}/"

    def _marker_key(self, h: str, attempt: str) -> str:
        return f"{self.location.prefix}pending/{h}.{attempt}"

    # --- writing ------------------------------------------------------------------------------------

    def add(self, unique_id: str, source: Path, *, mime_type: str, size: int, sha1: str) -> PendingBlob | None:
        h, attempt = self._hash(unique_id), uuid.uuid4().hex
        bucket, key, marker = self.location.bucket, self._doc_dir(h) + attempt, self._marker_key(h, attempt)
        try:
            if self._committed(h) is not None:
                return None
            self._put_marker(marker, unique_id)
        except _S3_ERRORS as exc:
            raise BlobStoreUnavailable(f"object storage: {_describe(exc)}") from None
        metadata = {"unique-id": quote(unique_id, safe=""), "mime-type": quote(mime_type, safe=""), "sha1": sha1}
        try:
            if size <= self._part_size:
                with source.open("rb") as body:
                    self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=size,
                                        ContentType="application/octet-stream", Metadata=metadata)
            else:
                self._multipart(key, source, metadata, marker, unique_id)
            return PendingBlob(unique_id, attempt)
        except BaseException as exc:
            # Nothing of this attempt may stay: the object (if it was completed) and the marker. When the store
            # is down these fail too; the marker then stays, and recovery removes both after the lease.
            self.remove([PendingBlob(unique_id, attempt)])
            if isinstance(exc, _S3_ERRORS):
                raise BlobStoreUnavailable(f"object storage: {_describe(exc)}") from None
            raise

    def _multipart(self, key: str, source: Path, metadata: dict[str, str], marker: str, unique_id: str) -> None:
        bucket = self.location.bucket
        upload_id = self._s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata,
                                                     ContentType="application/octet-stream")["UploadId"]
        renew_at = time.monotonic() + self.lease_s / 3
        try:
            parts = []
            with source.open("rb") as f:
                number = 1
                while data := f.read(self._part_size):   # one part in memory at a time
                    etag = self._s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                                Body=data)["ETag"]
                    parts.append({"PartNumber": number, "ETag": etag})
                    number += 1
                    del data
                    if time.monotonic() >= renew_at:   # still alive: recovery elsewhere must not take it
                        self._put_marker(marker, unique_id)
                        renew_at = time.monotonic() + self.lease_s / 3
            self._s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                               MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except _S3_ERRORS as exc:   # recovery aborts it after the lease
                log.warning("could not abort a multipart upload: %s", _describe(exc))
            raise

    def _put_marker(self, marker: str, unique_id: str) -> None:
        self._s3.put_object(Bucket=self.location.bucket, Key=marker, Body=unique_id.encode())

    def commit(self, blobs: list[PendingBlob]) -> None:
        for b in blobs:
            try:
                self._s3.delete_object(Bucket=self.location.bucket, Key=self._marker_key(self._hash(b.unique_id),
                                                                                         b.marker))
            except _S3_ERRORS as exc:
                # Registered, but still marked pending: not served until a node's recovery sees the registry
                # knows it and drops the marker.
                log.error("registered document stays pending (its marker could not be removed): %s",
                          _describe(exc))

    def remove(self, blobs: list[PendingBlob]) -> None:
        """Remove each attempt's object, then its marker (never the other way: a marker-less object would be
        served). Failures are logged; the marker then stays for recovery."""
        for b in blobs:
            h = self._hash(b.unique_id)
            try:
                self._s3.delete_object(Bucket=self.location.bucket, Key=self._doc_dir(h) + b.marker)
                self._s3.delete_object(Bucket=self.location.bucket, Key=self._marker_key(h, b.marker))
            except _S3_ERRORS as exc:
                log.error("could not remove an unregistered document (recovery will): %s", _describe(exc))

    def recover(self, is_registered: Callable[[str], bool | None]) -> list[str]:
        """Remove the attempts left pending longer than the lease whose uniqueId the registry does not know;
        drop the markers of those it knows (a crash between registration and commit); abort multipart uploads
        older than the lease; empty the local spool. Raises :class:`BlobStoreUnavailable` when the store
        cannot be listed (a node must not start without its document store)."""
        removed: list[str] = []
        bucket = self.location.bucket
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=self.lease_s)
            for item in self._list(f"{self.location.prefix}pending/"):
                if item["LastModified"] > cutoff:
                    continue   # an upload or a registration may still be under way on some node
                name = item["Key"].rsplit("/", 1)[1]
                h, _, attempt = name.partition(".")
                uid = self._s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
                known = is_registered(uid) if uid else False
                if known is False:
                    if uid:
                        self.remove([PendingBlob(uid, attempt)])
                    self._s3.delete_object(Bucket=bucket, Key=item["Key"])   # also a marker cut short
                    removed.append(uid)
                elif known:
                    committed = self._committed(h, ignore=attempt)
                    if committed is not None:   # registered through another attempt: this one is a leftover
                        self.remove([PendingBlob(uid, attempt)])
                    else:
                        self.commit([PendingBlob(uid, attempt)])
            self._abort_stale_uploads(cutoff)
        except _S3_ERRORS as exc:
            raise BlobStoreUnavailable(f"object storage s3://{bucket}/{self.location.prefix}: "
                                       f"{_describe(exc)}") from None
        for leftover in self.spool.iterdir():
            leftover.unlink(missing_ok=True)
        return removed

    def _abort_stale_uploads(self, cutoff: datetime) -> None:
        paginator = self._s3.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=f"{self.location.prefix}docs/"):
            for upload in page.get("Uploads") or []:
                if upload["Initiated"] <= cutoff:
                    self._s3.abort_multipart_upload(Bucket=self.location.bucket, Key=upload["Key"],
                                                    UploadId=upload["UploadId"])

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
            yield from page.get("Contents") or []

    # --- reading ------------------------------------------------------------------------------------

    def _committed(self, h: str, *, ignore: str = "") -> dict[str, Any] | None:
        """The attempt of document ``h`` that is stored and no longer pending (the oldest, should a concurrent
        duplicate of the same document have been accepted too), or None."""
        attempts = [o for o in self._list(self._doc_dir(h)) if o["Key"].rsplit("/", 1)[1] != ignore]
        if not attempts:
            return None
        marker_prefix = self._marker_key(h, "")
        pending = {o["Key"][len(marker_prefix):] for o in self._list(marker_prefix)}
        done = [o for o in attempts if o["Key"].rsplit("/", 1)[1] not in pending]
        return min(done, key=lambda o: (o["LastModified"], o["Key"])) if done else None

    def get(self, unique_id: str) -> BlobInfo | None:
        try:
            found = self._committed(self._hash(unique_id))
            if found is None:
                return None
            head = self._s3.head_object(Bucket=self.location.bucket, Key=found["Key"])
        except _S3_ERRORS as exc:
            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None   # removed between the listing and now
            raise BlobStoreUnavailable(f"object storage: {_describe(exc)}") from None
        meta = head.get("Metadata") or {}
        return BlobInfo(unique_id, unquote(meta.get("mime-type", "application%2Foctet-stream")),
                        int(head["ContentLength"]), meta.get("sha1", ""), self._chunks(found["Key"]))

    def _chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, CHUNK at a time; the request is made when the first chunk is asked for."""
        try:
            body = self._s3.get_object(Bucket=self.location.bucket, Key=key)["Body"]
        except _S3_ERRORS as exc:
            raise BlobStoreUnavailable(f"object storage: {_describe(exc)}") from None
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
