"""The Document Repository: ITI-41 (store then register, all or nothing) and ITI-43 (streamed retrieve),
the blob stores (filesystem, S3), and the port to the registry (in-process or remote over ITI-42)."""

from repository._blobstore import BlobInfo, BlobStore, BlobStoreUnavailable, FilesystemBlobStore, read_chunks
from repository._registry_port import RegistryPort, RemoteRegistry
from repository._repository import Repository, RetrieveResult
from repository._s3blobstore import S3BlobStore, S3Location, s3_client
from repository._stores import open_blob_store

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
