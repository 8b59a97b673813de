"""Which blob store a node uses: the filesystem one in its data directory, or S3 (``blob_store_url``)."""

from __future__ import annotations

from pathlib import Path

from repository._blobstore import BlobStore, FilesystemBlobStore


def open_blob_store(blob_dir: Path, url: str | None, *, s3_endpoint_url: str | None = None,
                    lease_s: float = 900.0, sidecars: bool | None = None) -> BlobStore:
    """``url`` None: files under ``blob_dir``. ``s3://BUCKET[/PREFIX]``: objects in that bucket of the store
    at ``s3_endpoint_url`` (None: AWS itself), the request spool staying in ``blob_dir/.spool``. ValueError for
    any other URL."""
    if url is None:
        return FilesystemBlobStore(blob_dir, sidecars=sidecars)
    from repository._s3blobstore import S3BlobStore, S3Location, s3_client  # boto3 (~9 MB) only for S3

    return S3BlobStore(S3Location.parse(url), blob_dir / ".spool", client=s3_client(s3_endpoint_url),
                       lease_s=lease_s)
