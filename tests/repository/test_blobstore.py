"""The filesystem blob store's directories (issue 13, defect 7: refused submissions left empty ones)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from repository import FilesystemBlobStore


def _dirs(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


def test_remove_prunes_the_shard_directories_it_emptied(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    baseline = _dirs(store.root)
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    kept = store.add("1.2.3.4", source, mime_type="text/plain", size=8, sha1="x" * 40)
    refused = store.add("1.2.3.5", source, mime_type="text/plain", size=8, sha1="x" * 40)
    assert kept is not None
    assert refused is not None
    store.remove([refused])
    store.commit([kept])
    assert store.get("1.2.3.4") is not None
    assert store.get("1.2.3.5") is None
    assert source.read_bytes() == b"document"   # the source stays the caller's
    # Only the kept blob's two shard levels remain besides the store's own directories.
    assert len(_dirs(store.root) - baseline) == 2
    store.remove([kept])
    assert _dirs(store.root) == baseline


def test_recover_prunes_empty_shard_directories_left_by_older_versions(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    baseline = _dirs(store.root)
    (store.root / "ab" / "cd").mkdir(parents=True)
    (store.root / "ef").mkdir()
    source = tmp_path / "doc"
    source.write_bytes(b"kept")
    blob = store.add("1.2.3.6", source, mime_type="text/plain", size=4, sha1="y" * 40)
    assert blob is not None
    store.commit([blob])
    store.recover(lambda _uid: True)
    assert store.get("1.2.3.6") is not None
    assert _dirs(store.root) - baseline == {str(store._path("1.2.3.6").parent.parent.relative_to(store.root)),
                                            str(store._path("1.2.3.6").parent.relative_to(store.root))}


def test_the_sidecar_is_the_pending_marker_s_file_and_outlives_it(tmp_path: Path) -> None:
    """Issue 13: one durable file serves as marker and sidecar (three fsyncs per document instead of four)."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    blob = store.add("1.2.3.7", source, mime_type="text/xml", size=8, sha1="a" * 40)
    assert blob is not None
    marker, sidecar = Path(blob.marker), store._path("1.2.3.7").with_suffix(".meta")
    assert marker.stat().st_ino == sidecar.stat().st_ino
    assert store.get("1.2.3.7") is None            # pending: not served
    store.commit([blob])
    assert not marker.exists()
    info = store.get("1.2.3.7")
    assert info is not None
    assert (info.mime_type, info.size, info.sha1) == ("text/xml", 8, "a" * 40)


def test_recover_reads_the_markers_of_both_formats(tmp_path: Path) -> None:
    """A crash between storing and registering: the orphan goes, the registered document stays, whether its
    marker holds the sidecar's JSON (this version) or the bare uniqueId (earlier versions)."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    orphan = store.add("1.2.3.8", source, mime_type="text/xml", size=8, sha1="b" * 40)
    registered = store.add("1.2.3.9", source, mime_type="text/xml", size=8, sha1="c" * 40)
    old_orphan = store.add("1.2.3.10", source, mime_type="text/xml", size=8, sha1="d" * 40)
    assert orphan is not None
    assert registered is not None
    assert old_orphan is not None
    # An earlier version's marker: the uniqueId alone, in a file of its own (the sidecar a separate file).
    old_marker = Path(old_orphan.marker)
    old_marker.unlink()
    old_marker.write_text("1.2.3.10")
    asked: list[str] = []
    removed = store.recover(lambda uid: asked.append(uid) or uid == "1.2.3.9")
    assert sorted(asked) == ["1.2.3.10", "1.2.3.8", "1.2.3.9"]
    assert sorted(removed) == ["1.2.3.10", "1.2.3.8"]
    assert store.get("1.2.3.8") is None
    assert not store._path("1.2.3.8").exists()
    assert store.get("1.2.3.10") is None
    assert not store._path("1.2.3.10").with_suffix(".meta").exists()
    info = store.get("1.2.3.9")
    assert info is not None
    assert info.sha1 == "c" * 40
    assert not list((store.root / ".pending").iterdir())


def _same_shard_unique_ids() -> tuple[str, str]:
    """Two uniqueIds whose blobs share a shard directory (the first four hex digits of their SHA-256)."""
    import hashlib

    seen: dict[str, str] = {}
    for n in range(1_000_000):
        uid = f"1.2.250.1.999.{n}"
        shard = hashlib.sha256(uid.encode()).hexdigest()[:4]
        if shard in seen:
            return seen[shard], uid
        seen[shard] = uid
    raise AssertionError("no two uniqueIds in one shard")


def test_a_document_is_linked_into_an_existing_shard_and_into_one_a_removal_pruned(tmp_path: Path) -> None:
    """The shard directory is made only when the link finds it missing (issue 13): a second document of the same
    shard is linked into the existing directory; once a removal pruned it, the next document makes it again."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    first, second = _same_shard_unique_ids()
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    a = store.add(first, source, mime_type="text/plain", size=8, sha1="b" * 40)
    assert a is not None
    shard = store._path(first).parent
    assert store._path(second).parent == shard
    b = store.add(second, source, mime_type="text/plain", size=8, sha1="c" * 40)
    assert b is not None
    store.commit([a, b])
    names = {store._path(u).name + suffix for u in (first, second) for suffix in ("", ".meta")}
    assert {p.name for p in shard.iterdir()} == names
    assert store.get(first) is not None
    assert store.get(second) is not None
    store.remove([a, b])
    assert not shard.exists()            # pruned with its parent
    again = store.add(second, source, mime_type="text/plain", size=8, sha1="c" * 40)
    assert again is not None
    store.commit([again])
    info = store.get(second)
    assert info is not None
    assert Path(info.content).read_bytes() == b"document"
    assert info.sha1 == "c" * 40


def test_recover_removes_markers_cut_short_by_a_crash(tmp_path: Path) -> None:
    """Markers are written in place (no temp file renamed over them, issue 13): a crash during the write leaves
    an empty or partial marker, before anything was linked after it. Recovery removes it without asking the
    registry about a document it cannot name, and leaves the other documents alone."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    kept = store.add("1.2.3.11", source, mime_type="text/xml", size=8, sha1="e" * 40)
    assert kept is not None
    store.commit([kept])
    pending = store.root / ".pending"
    full = b'{"uniqueId": "1.2.3.12", "mimeType": "text/xml", "size": 8, "sha1": "' + b"f" * 40 + b'"}'
    (pending / "empty.0").write_bytes(b"")
    (pending / "partial.1").write_bytes(full[:30])
    (pending / "cut-utf8.2").write_bytes(b'{"uniqueId": "\xc3')
    asked: list[str] = []
    removed = store.recover(lambda uid: asked.append(uid) or False)
    assert asked == []
    assert removed == ["", "", ""]
    assert not list(pending.iterdir())
    assert store.get("1.2.3.11") is not None


def test_a_marker_that_cannot_be_made_durable_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """The marker's fsync fails (an I/O error, a full journal): add() raises and leaves neither the marker, now
    written in place, nor the document, its sidecar or a shard directory."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    baseline = _dirs(store.root)
    source = tmp_path / "doc"
    source.write_bytes(b"document")

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError) as raised:
        store.add("1.2.3.13", source, mime_type="text/xml", size=8, sha1="f" * 40)
    monkeypatch.undo()
    assert raised.value.errno == errno.EIO
    assert not list((store.root / ".pending").iterdir())
    assert not store._path("1.2.3.13").exists()
    assert _dirs(store.root) == baseline
    assert source.read_bytes() == b"document"
