"""The Document Repository: ITI-41 (store then register, all or nothing) and ITI-43 (streamed retrieve),
the blob stores (filesystem, S3), and the port to the registry (in-process or remote over ITI-42)."""

from typing import TYPE_CHECKING, Any

from repository._blobstore import BlobInfo, BlobStore, BlobStoreUnavailable, FilesystemBlobStore, read_chunks
from repository._registry_port import RegistryPort, RemoteRegistry
from repository._repository import Repository, RetrieveResult
from repository._stores import open_blob_store

if TYPE_CHECKING:
    from repository._s3blobstore import S3BlobStore, S3Location, s3_client

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobStoreUnavailable",
    "FilesystemBlobStore",
    "RegistryPort",
    "RemoteRegistry",
    "Repository",
    "RetrieveResult",
    "S3BlobStore",
    "S3Location",
    "open_blob_store",
    "read_chunks",
    "s3_client",
]


def __getattr__(name: str) -> Any:
    """The S3 names are loaded on first use: boto3 and botocore (~9 MB a process) only where S3 is used."""
    if name in ("S3BlobStore", "S3Location", "s3_client"):
        from repository import _s3blobstore

        return getattr(_s3blobstore, name)
    raise AttributeError(f"module 'repository' has no attribute {name!r}")
