"""The Document Repository: ITI-41 (store then register, all or nothing) and ITI-43 (streamed retrieve),
the blob store, and the port to the registry (in-process or remote over ITI-42)."""

from repository._blobstore import BlobInfo, FilesystemBlobStore, read_chunks
from repository._registry_port import RegistryPort, RemoteRegistry
from repository._repository import Repository, RetrieveResult

__all__ = [
    "BlobInfo",
    "FilesystemBlobStore",
    "RegistryPort",
    "RemoteRegistry",
    "Repository",
    "RetrieveResult",
    "read_chunks",
]
