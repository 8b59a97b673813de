"""The blob store contract (:class:`BlobStore`) and the filesystem store: one file per document, written
durably (a hard link to the fsynced spool file, or a fsynced temp copy renamed into place; fsync dir).

Keys are document uniqueIds; file names are their SHA-256 so any uniqueId is a safe path. Each blob has
a sidecar holding what ITI-43 must answer (mimeType, size, hash), written before the blob itself becomes
visible, so a visible blob always has its sidecar.

Crash safety: before a blob is stored for a submission, a *pending* marker is written; it is removed once
the registry has committed (or the blob removed if it did not). :meth:`recover` — run at start-up —
deletes the blobs of markers left by a crash between the two, if the registry does not know the document.

The marker holds the sidecar's content (JSON, uniqueId included) and the sidecar is a hard link to it: one
file written and fsynced serves both, so a document costs three fsyncs (marker, document, shard directory)
instead of four (issue 13: each fsync is ~0.25 ms of the server's CPU on ext4). Durability is unchanged: when
:meth:`add` returns, the document's data (fsync of the source), the sidecar's data (the marker's fsync: the
same inode) and both names in the shard directory (its fsync) are on disk, and the marker was durable before
either name was created, as before. :meth:`commit` removes only the marker's name; the sidecar keeps the inode.
The marker is written in place under its own new name (no temp file and rename): one cut short by a crash holds
no complete JSON and names no document, and nothing was linked after it (:func:`_write_marker`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

StrPath = str | os.PathLike[str]

CHUNK = 256 * 1024


@dataclass(frozen=True)
class PendingBlob:
    """A blob stored for a submission whose registration is not yet known to have committed. ``marker`` names
    the store's pending marker of this attempt (a file path, or an S3 attempt id)."""

    unique_id: str
    marker: str


@dataclass(frozen=True)
class BlobInfo:
    """What ITI-43 answers for a stored document. ``content`` is the file, or the chunks of a stream that is
    opened only when they are first read (an object store)."""

    unique_id: str
    mime_type: str
    size: int
    sha1: str
    content: Path | Iterable[bytes]


class BlobStoreUnavailable(OSError):
    """The blob store could not be reached or refused the operation (object storage down, credentials
    refused): the repository answers XDSRepositoryError, nothing is registered."""


class BlobStore(Protocol):
    """Where the repository keeps documents (docs/architecture.md, repository). The all-or-nothing rule of
    ITI-41: :meth:`add` stores a document *pending* (invisible to :meth:`get`) behind a durable marker, the
    registry registers, then :meth:`commit` (or :meth:`remove` on failure); :meth:`recover` at start-up
    removes what a crash left pending and the registry does not know."""

    spool: Path
    """Local directory for the temp files of requests (MTOM parts, inline documents)."""

    def add(self, unique_id: str, source: Path, *, mime_type: str, size: int, sha1: str) -> PendingBlob | None:
        """Store ``source`` (a spool file, left to the caller) pending under ``unique_id``; None when a
        document with that uniqueId is already stored (the registry decides whether it is the same).
        Raises OSError (:class:`BlobStoreUnavailable` for a remote store) and then leaves nothing visible."""
        ...

    def commit(self, blobs: list[PendingBlob]) -> None:
        """The registry accepted these documents: they are no longer pending."""
        ...

    def remove(self, blobs: list[PendingBlob]) -> None:
        """Undo :meth:`add` for documents whose registration failed."""
        ...

    def recover(self, is_registered: Callable[[str], bool | None]) -> list[str]:
        """Finish what a crash interrupted; the uniqueIds whose orphan documents were removed."""
        ...

    def get(self, unique_id: str) -> BlobInfo | None:
        """The stored, registered (not pending) document, or None."""
        ...


class FilesystemBlobStore:
    """``sidecars``: keep each document's metadata in a sidecar file (True) or in an extended attribute of the
    document's own file (False); None (the default) chooses the attribute where the filesystem supports
    extended attributes and hard links, and sidecars elsewhere. A store reads both kinds whatever it writes."""

    def __init__(self, root: Path, *, sidecars: bool | None = None) -> None:
        self.root = root
        self.spool = root / ".spool"       # request temp files: same filesystem, so rename is atomic
        self._pending = root / ".pending"
        for d in (self.root, self.spool, self._pending):
            d.mkdir(parents=True, exist_ok=True)
        self._root, self._pending_dir = os.fspath(root), os.fspath(self._pending)
        self.sidecars = sidecars if sidecars is not None else not _attributes_and_links_work(
            os.fspath(self.spool), self._pending_dir)

    def _path(self, unique_id: str) -> Path:
        return Path(self._file(unique_id))

    def _file(self, unique_id: str) -> str:
        """The blob's file name as a string: :meth:`add` joins and passes names as strings, not ``Path``s
        (pathlib's parsing and joining was a tenth of the repository's own CPU per ITI-41, issue 13)."""
        h = hashlib.sha256(unique_id.encode()).hexdigest()
        return f"{self._root}/{h[:2]}/{h[2:4]}/{h}"

    # --- writing ------------------------------------------------------------------------------------

    def add(self, unique_id: str, source: Path, *, mime_type: str, size: int, sha1: str) -> PendingBlob | None:
        """Link (or copy) ``source`` into the store under ``unique_id``, pending until :meth:`commit`; ``source``
        stays the caller's (one MIME part may be stored under several uniqueIds). Returns None when a blob with
        that uniqueId is already stored: the registry decides whether that is the same document, and an
        existing blob is never replaced or removed by a later submission.

        Each attempt has its own durable marker, so a concurrent submission of the same uniqueId that loses
        the race can never drop the winner's marker."""
        final = self._file(unique_id)
        if os.path.exists(final):
            return None
        shard, name = os.path.split(final)
        marker = f"{self._pending_dir}/{name}.{uuid.uuid4().hex}"
        pending = PendingBlob(unique_id, marker)
        meta = json.dumps({"uniqueId": unique_id, "mimeType": mime_type, "size": size, "sha1": sha1}).encode()
        if not self.sidecars:
            return self._add_with_attribute(pending, source, final, meta)
        linked = False
        try:
            _write_marker(marker, meta)                          # fsync 1: the marker, the sidecar to be
            _fsync_file(source)                                  # fsync 2: the document's data
            if not _link_new(source, final):
                _unlink(marker)
                return None
            linked = True
            # Only the attempt that owns the blob gets its sidecar (ITI-43 needs both to serve it): a name for
            # the marker's complete, already durable file, so a reader never sees a partly written sidecar.
            _link_sidecar(marker, final + ".meta")
            _fsync_dir(shard)                                    # fsync 3: both names in the shard directory
            return pending
        except BaseException:
            self._undo(pending, shard, linked=linked)
            raise

    def _add_with_attribute(self, pending: PendingBlob, source: Path, final: str, meta: bytes
                            ) -> PendingBlob | None:
        """:meth:`add` with the metadata in an extended attribute of the document's file and the pending marker a
        hard link to that file: one inode per document instead of two (the sidecar's). Creating an inode was the
        largest kernel cost of an ITI-41 here: ext4 without a journal checks every free inode it passes for a
        deletion in the last minutes (benchmarks/README.md, issue 13).

        Order, and what each fsync protects: the attribute and the data (one fsync: both are the inode's) are
        durable before the marker's name (fsync of ``.pending``), which is durable before the document's name
        exists (the link into the shard; the shard's fsync makes it durable before this returns). After a crash
        a document's name always comes with its metadata and, until :meth:`commit`, with a marker that
        :meth:`recover` finds and reads (the uniqueId is in the same attribute)."""
        marker, (shard, name) = pending.marker, os.path.split(final)
        linked = False
        try:
            os.setxattr(source, _ATTRIBUTE + name, meta)
            _fsync_file(source)                                  # fsync 1: data and metadata of the document
            os.link(source, marker)
            _fsync_dir(self._pending_dir)                        # fsync 2: the marker's name
            if not _link_new(source, final, copy=False):
                _unlink(marker)
                return None
            linked = True
            _fsync_dir(shard)                                    # fsync 3: the document's name
            return pending
        except BaseException:
            self._undo(pending, shard, linked=linked)
            raise

    def _undo(self, pending: PendingBlob, shard: str, *, linked: bool) -> None:
        """Leave nothing behind of an :meth:`add` that failed half-way (disk full while writing the marker or
        the sidecar, a failed fsync...): the caller only undoes what add() returned. Before the document was
        linked there is at most its marker (none yet is fine) and maybe a shard directory made for it."""
        if linked:
            self.remove([pending])
        else:
            _unlink(pending.marker)
            self._prune(Path(shard))

    def commit(self, blobs: list[PendingBlob]) -> None:
        """The registry accepted these documents: they are no longer pending."""
        for b in blobs:
            _unlink(b.marker)

    def remove(self, blobs: list[PendingBlob]) -> None:
        """Undo :meth:`add` for documents whose registration failed, shard directories included when they
        are left empty (a refused submission leaves nothing behind)."""
        for b in blobs:
            p = self._path(b.unique_id)
            p.unlink(missing_ok=True)
            p.with_suffix(".meta").unlink(missing_ok=True)
            Path(b.marker).unlink(missing_ok=True)
            self._prune(p.parent)

    def _prune(self, shard: Path) -> None:
        """Remove ``shard`` and its parent if they are empty. A concurrent :meth:`add` that made one of them
        and has not linked into it yet makes it again (:func:`_link_new`)."""
        for d in (shard, shard.parent):
            if d == self.root:
                return
            try:
                d.rmdir()
            except OSError:   # not empty (or already gone): it stays
                return

    def _is_pending(self, unique_id: str) -> bool:
        return any(self._pending.glob(f"{self._path(unique_id).name}.*"))

    def recover(self, is_registered: Callable[[str], bool | None]) -> list[str]:
        """Finish what a crash interrupted. Returns the uniqueIds whose orphan blobs were removed. A marker
        whose document the registry cannot confirm or refute (``None``) is left pending."""
        removed = []
        for marker in self._pending.iterdir():
            if marker.name.endswith(".tmp"):  # an earlier version's marker cut short: nothing was linked after it
                marker.unlink(missing_ok=True)
                continue
            uid = _marker_unique_id(marker)
            known = is_registered(uid) if uid else False
            if known is False:
                if uid:
                    self.remove([PendingBlob(uid, str(marker))])
                marker.unlink(missing_ok=True)  # also when it was cut short before holding the uniqueId
                removed.append(uid)
            elif known:
                marker.unlink(missing_ok=True)
        for leftover in self.spool.iterdir():
            leftover.unlink(missing_ok=True)
        self._prune_all()
        return removed

    def _prune_all(self) -> None:
        """Remove the empty shard directories (left by refused submissions before they were pruned)."""
        for top in self.root.iterdir():
            if len(top.name) != 2 or not top.is_dir() or top.name.startswith("."):
                continue
            for shard in top.iterdir():
                if shard.is_dir():
                    self._prune(shard)   # and top with the last one
            with contextlib.suppress(OSError):
                top.rmdir()              # a top directory that held no shard at all

    # --- reading ------------------------------------------------------------------------------------

    def get(self, unique_id: str) -> BlobInfo | None:
        p = self._path(unique_id)
        raw = _attribute(p)
        if raw is None:   # no such document, or one stored with a sidecar
            try:
                raw = p.with_suffix(".meta").read_bytes()
            except FileNotFoundError:
                return None
            if not p.exists():
                return None
        if self._is_pending(unique_id):
            return None  # not (yet) registered
        meta = json.loads(raw)
        return BlobInfo(unique_id, meta["mimeType"], meta["size"], meta["sha1"], p)


def _link_new(source: StrPath, final: str, *, copy: bool = True) -> bool:
    """Create ``final`` with the content of ``source`` if it does not exist (False if it does): a hard link,
    or a durable copy where hard links are not possible (with ``copy``; otherwise the OSError). The shard
    directories are made when the link finds them missing (new, or pruned by a concurrent removal in between):
    most documents go to an existing shard, where a ``mkdir`` first would cost system calls and an exception per
    document."""
    parent = os.path.dirname(final)
    for attempt in range(4):
        try:
            os.link(source, final)  # atomic create-if-absent: a concurrent twin gets FileExistsError
            return True
        except FileExistsError:
            return False
        except FileNotFoundError:
            if not os.path.exists(source):
                raise
            if attempt < 3:
                os.makedirs(parent, exist_ok=True)   # the shard directory is missing: make it, then link again
            continue
        except OSError:
            if not copy:
                raise
            break     # spool on another filesystem (or no hard links): copy
    os.makedirs(parent, exist_ok=True)
    tmp = f"{final}.{uuid.uuid4().hex}.tmp"
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        return True
    finally:
        _unlink(tmp)


def _link_sidecar(marker: str, meta: str) -> None:
    """Give the marker's file the sidecar's name. A sidecar without its document (a removal cut short by a crash
    before recovery ran) is stale: it is replaced."""
    if _link_new(marker, meta):
        return
    _unlink(meta)
    if not _link_new(marker, meta):
        raise FileExistsError(f"sidecar {os.path.basename(meta)} created concurrently")


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _marker_unique_id(marker: Path) -> str:
    """The uniqueId a pending marker names: its JSON's (the sidecar's content), or the whole text of a marker
    written by an earlier version; "" when unreadable, e.g. cut short by a crash (then nothing can have been
    registered under it)."""
    raw = _attribute(marker, marker.name.split(".", 1)[0])
    if raw is not None:   # a hard link to the document, its metadata in the attribute (_add_with_attribute)
        try:
            meta = json.loads(raw)
        except ValueError:
            return ""
        uid = meta.get("uniqueId", "") if isinstance(meta, dict) else ""
        return uid if isinstance(uid, str) else ""
    try:
        text = marker.read_bytes().decode()
    except UnicodeDecodeError:
        return ""
    if not text.startswith("{"):     # a uniqueId (an OID, ITI TF-3 4.2.3.2.26) never starts with "{"
        return text
    try:
        uid = json.loads(text).get("uniqueId", "")
    except (ValueError, AttributeError):
        return ""
    return uid if isinstance(uid, str) else ""


def read_chunks(path: Path, chunk: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while data := f.read(chunk):
            yield data


def _fsync_file(path: StrPath) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: StrPath) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
        _fsync_file(path)


_ATTRIBUTE = "user.dmp-xds."
"""Prefix of the extended attribute holding a document's metadata, followed by the document's file name (the
SHA-256 of its uniqueId): one MIME part stored under two uniqueIds is one inode with two attributes."""


def _attribute(path: Path, name: str | None = None) -> bytes | None:
    """The metadata attribute of the document file ``path`` (named after ``name``, by default the file's own
    name); None when the file has none (stored with a sidecar, or a marker of that kind) or does not exist."""
    try:
        return os.getxattr(path, _ATTRIBUTE + (name or path.name))
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            return None
        raise


def _attributes_and_links_work(spool: str, pending: str) -> bool:
    """Whether the store's filesystem takes user extended attributes, and hard links from the spool to the
    pending directory (tmpfs before Linux 6.6 has no user attributes, some network filesystems no hard links)."""
    probe = f"{spool}/probe-{uuid.uuid4().hex}.tmp"
    link = f"{pending}/probe-{uuid.uuid4().hex}.tmp"   # ".tmp": removed by recover() if a crash leaves it
    try:
        os.close(os.open(probe, _MARKER_FLAGS, 0o600))
        os.setxattr(probe, _ATTRIBUTE + "probe", b"1")
        os.link(probe, link)
        return True
    except (OSError, AttributeError):   # AttributeError: no os.setxattr (not Linux)
        return False
    finally:
        _unlink(probe)
        _unlink(link)


_MARKER_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_marker(path: str, data: bytes) -> None:
    """Create the pending marker ``path`` with ``data``, durably (fsync), before anything is linked after it.

    Written in place, not to a temp file renamed over it: a marker is never replaced (its name is new to each
    attempt), and one cut short by a crash is read by :meth:`FilesystemBlobStore.recover` as naming no document
    (empty, or JSON that does not parse): nothing was linked after it, since links come only after this fsync.
    That spares a rename and a name per document, and ``os.write`` on the descriptor spares the three system
    calls (status, terminal, position) of a ``BufferedWriter`` (issue 13)."""
    fd = os.open(path, _MARKER_FLAGS, 0o644)
    try:
        with memoryview(data) as view:
            done = 0
            while done < len(view):
                done += os.write(fd, view[done:])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(path)
        raise
    os.close(fd)
