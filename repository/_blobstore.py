"""Filesystem blob store: one file per document, written durably (temp file, fsync, rename, fsync dir).

Keys are document uniqueIds; file names are their SHA-256 so any uniqueId is a safe path. Each blob has
a sidecar holding what ITI-43 must answer (mimeType, size, hash), written before the blob itself becomes
visible, so a visible blob always has its sidecar.

Crash safety: before a blob is stored for a submission, a *pending* marker is written; it is removed once
the registry has committed (or the blob removed if it did not). :meth:`recover` — run at start-up —
deletes the blobs of markers left by a crash between the two, if the registry does not know the document.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 256 * 1024


@dataclass(frozen=True)
class BlobInfo:
    unique_id: str
    mime_type: str
    size: int
    sha1: str
    path: Path


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.spool = root / ".spool"       # request temp files: same filesystem, so rename is atomic
        self._pending = root / ".pending"
        for d in (self.root, self.spool, self._pending):
            d.mkdir(parents=True, exist_ok=True)

    def _path(self, unique_id: str) -> Path:
        h = hashlib.sha256(unique_id.encode()).hexdigest()
        return self.root / h[:2] / h[2:4] / h

    # --- writing ------------------------------------------------------------------------------------

    def add(self, unique_id: str, source: Path, *, mime_type: str, size: int, sha1: str) -> bool:
        """Move ``source`` into the store under ``unique_id``. Returns False (and leaves ``source``) when a
        blob with that uniqueId is already stored: the registry decides whether that is the same document,
        and the existing blob must never be replaced or removed by a later failed submission."""
        final = self._path(unique_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            return False
        marker, meta_path, tmp = self._marker(unique_id), final.with_suffix(".meta"), final.with_suffix(".tmp")
        stored = False
        try:
            marker.write_text(unique_id)
            meta = {"uniqueId": unique_id, "mimeType": mime_type, "size": size, "sha1": sha1}
            _write_durably(meta_path, json.dumps(meta).encode())
            _fsync_file(source)
            try:
                os.link(source, final)           # atomic create-if-absent; a concurrent twin gets FileExistsError
            except FileExistsError:
                marker.unlink(missing_ok=True)
                return False
            except OSError:
                # Spool on another filesystem (or no hard links): copy durably, then rename.
                with open(source, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                    dst.flush()
                    os.fsync(dst.fileno())
                os.replace(tmp, final)
            stored = True
            source.unlink(missing_ok=True)
            _fsync_dir(final.parent)
            return True
        except BaseException:
            # Failed half-way (disk full while writing the marker or the sidecar...): the caller only undoes
            # documents add() reported as stored, so leave nothing behind here, not even an empty marker.
            tmp.unlink(missing_ok=True)
            if stored:
                self.remove([unique_id])
            else:
                marker.unlink(missing_ok=True)
                if not final.exists():
                    meta_path.unlink(missing_ok=True)
            raise

    def commit(self, unique_ids: list[str]) -> None:
        """The registry accepted these documents: they are no longer pending."""
        for uid in unique_ids:
            self._marker(uid).unlink(missing_ok=True)

    def remove(self, unique_ids: list[str]) -> None:
        """Undo :meth:`add` for documents whose registration failed."""
        for uid in unique_ids:
            p = self._path(uid)
            p.unlink(missing_ok=True)
            p.with_suffix(".meta").unlink(missing_ok=True)
            self._marker(uid).unlink(missing_ok=True)

    def _marker(self, unique_id: str) -> Path:
        return self._pending / hashlib.sha256(unique_id.encode()).hexdigest()

    def recover(self, is_registered: Callable[[str], bool | None]) -> list[str]:
        """Finish what a crash interrupted. Returns the uniqueIds whose orphan blobs were removed. A marker
        whose document the registry cannot confirm or refute (``None``) is left pending."""
        removed = []
        for marker in self._pending.iterdir():
            uid = marker.read_text()
            known = is_registered(uid)
            if known is False:
                self.remove([uid])
                marker.unlink(missing_ok=True)  # also when its content was not the uniqueId (cut short)
                removed.append(uid)
            elif known:
                marker.unlink(missing_ok=True)
        for leftover in self.spool.iterdir():
            leftover.unlink(missing_ok=True)
        return removed

    # --- reading ------------------------------------------------------------------------------------

    def get(self, unique_id: str) -> BlobInfo | None:
        p = self._path(unique_id)
        try:
            meta = json.loads(p.with_suffix(".meta").read_bytes())
        except FileNotFoundError:
            return None
        if not p.exists() or self._marker(unique_id).exists():
            return None  # not (yet) registered
        return BlobInfo(unique_id, meta["mimeType"], meta["size"], meta["sha1"], p)


def read_chunks(path: Path, chunk: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while data := f.read(chunk):
            yield data


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
        _fsync_file(path)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
