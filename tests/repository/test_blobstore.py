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
    """Issue 13: one durable file serves as marker and sidecar (three fsyncs per document instead of four), where
    the filesystem has no extended attributes."""
    store = FilesystemBlobStore(tmp_path / "blobs", sidecars=True)
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
    marker holds the sidecar's JSON (sidecar stores) or the bare uniqueId (earlier versions)."""
    store = FilesystemBlobStore(tmp_path / "blobs", sidecars=True)
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


@pytest.mark.parametrize("sidecars", [True, False], ids=["sidecars", "attributes"])
def test_a_document_is_linked_into_an_existing_shard_and_into_one_a_removal_pruned(tmp_path: Path,
                                                                                   sidecars: bool) -> None:
    """The shard directory is made only when the link finds it missing (issue 13): a second document of the same
    shard is linked into the existing directory; once a removal pruned it, the next document makes it again."""
    store = FilesystemBlobStore(tmp_path / "blobs", sidecars=sidecars)
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
    suffixes = ("", ".meta") if sidecars else ("",)
    names = {store._path(u).name + suffix for u in (first, second) for suffix in suffixes}
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


@pytest.mark.parametrize("sidecars", [True, False], ids=["sidecars", "attributes"])
def test_a_marker_that_cannot_be_made_durable_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             sidecars: bool) -> None:
    """The marker's fsync fails (an I/O error, a full journal): add() raises and leaves neither the marker, now
    written in place, nor the document, its sidecar or a shard directory."""
    store = FilesystemBlobStore(tmp_path / "blobs", sidecars=sidecars)
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


# --- metadata in an extended attribute (one inode per document, issue 13) -------------------------------------


def test_the_default_store_keeps_one_inode_per_document(tmp_path: Path) -> None:
    """On this filesystem (ext4: user attributes and hard links) the store puts a document's metadata in an
    attribute of its file and makes the pending marker a link to that file: no sidecar file, no second inode."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    assert store.sidecars is False
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    blob = store.add("1.2.3.20", source, mime_type="text/xml", size=8, sha1="a" * 40)
    assert blob is not None
    final = store._path("1.2.3.20")
    assert Path(blob.marker).stat().st_ino == final.stat().st_ino == source.stat().st_ino
    assert {p.name for p in final.parent.iterdir()} == {final.name}
    assert store.get("1.2.3.20") is None            # pending: not served
    store.commit([blob])
    assert not Path(blob.marker).exists()
    info = store.get("1.2.3.20")
    assert info is not None
    assert (info.mime_type, info.size, info.sha1) == ("text/xml", 8, "a" * 40)
    assert Path(info.content).read_bytes() == b"document"
    assert not list(store.root.rglob("*.meta"))


def test_recover_with_attribute_markers_and_leftovers_of_a_sidecar_store(tmp_path: Path) -> None:
    """A crash between storing and registering, on a store that held documents of both kinds: recovery asks the
    registry about each marker's uniqueId (read from the attribute, or from a sidecar marker's JSON), removes the
    orphans with their names and keeps the registered documents, which stay readable."""
    root = tmp_path / "blobs"
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    old = FilesystemBlobStore(root, sidecars=True)
    old_kept = old.add("1.2.3.21", source, mime_type="text/plain", size=8, sha1="b" * 40)
    old_orphan = old.add("1.2.3.22", source, mime_type="text/plain", size=8, sha1="c" * 40)
    store = FilesystemBlobStore(root)
    assert store.sidecars is False
    orphan = store.add("1.2.3.23", source, mime_type="text/xml", size=8, sha1="d" * 40)
    registered = store.add("1.2.3.24", source, mime_type="text/xml", size=8, sha1="e" * 40)
    assert None not in (old_kept, old_orphan, orphan, registered)
    asked: list[str] = []
    removed = store.recover(lambda uid: asked.append(uid) or uid in ("1.2.3.21", "1.2.3.24"))
    assert sorted(asked) == ["1.2.3.21", "1.2.3.22", "1.2.3.23", "1.2.3.24"]
    assert sorted(removed) == ["1.2.3.22", "1.2.3.23"]
    for gone in ("1.2.3.22", "1.2.3.23"):
        assert store.get(gone) is None
        assert not store._path(gone).exists()
        assert not store._path(gone).with_suffix(".meta").exists()
    kept_old, kept_new = store.get("1.2.3.21"), store.get("1.2.3.24")
    assert kept_old is not None
    assert (kept_old.mime_type, kept_old.sha1) == ("text/plain", "b" * 40)
    assert kept_new is not None
    assert (kept_new.mime_type, kept_new.sha1) == ("text/xml", "e" * 40)
    assert not list((root / ".pending").iterdir())


def test_one_part_under_two_unique_ids_keeps_each_document_s_metadata(tmp_path: Path) -> None:
    """One MIME part stored under two uniqueIds (issue 13, defect 6) is one inode with one attribute per
    document: each is served with its own metadata, and removing one leaves the other whole."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    source = tmp_path / "doc"
    source.write_bytes(b"document")
    a = store.add("1.2.3.25", source, mime_type="text/plain", size=8, sha1="f" * 40)
    b = store.add("1.2.3.26", source, mime_type="application/pdf", size=8, sha1="f" * 40)
    assert a is not None
    assert b is not None
    store.commit([a, b])
    info_a, info_b = store.get("1.2.3.25"), store.get("1.2.3.26")
    assert info_a is not None
    assert info_a.mime_type == "text/plain"
    assert info_b is not None
    assert info_b.mime_type == "application/pdf"
    store.remove([a])
    assert store.get("1.2.3.25") is None
    info_b = store.get("1.2.3.26")
    assert info_b is not None
    assert info_b.mime_type == "application/pdf"
    assert Path(info_b.content).read_bytes() == b"document"


def test_no_room_for_the_metadata_attribute_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The filesystem refuses the metadata attribute (ENOSPC: no room for it): add() raises that error, which the
    repository answers with XDSRepositoryOutOfResources, and leaves no marker, document or shard directory."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    assert store.sidecars is False
    baseline = _dirs(store.root)
    source = tmp_path / "doc"
    source.write_bytes(b"document")

    def no_room(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "setxattr", no_room)
    with pytest.raises(OSError) as raised:
        store.add("1.2.3.27", source, mime_type="text/xml", size=8, sha1="f" * 40)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC
    assert not list((store.root / ".pending").iterdir())
    assert not store._path("1.2.3.27").exists()
    assert _dirs(store.root) == baseline


def test_a_node_configured_for_sidecars_writes_sidecars_and_refuses_an_unknown_mode(tmp_path: Path) -> None:
    """``blob_metadata`` of the node's configuration (README): "sidecar" forces sidecar files on a filesystem
    that has extended attributes; a value that is neither "auto" nor "sidecar" stops the node from starting."""
    import dataclasses

    from nodes import make_node

    from server._app import Node

    cfg = make_node(tmp_path / "node")
    auto = Node.build(cfg)
    assert isinstance(auto.repository.blobs, FilesystemBlobStore)
    assert auto.repository.blobs.sidecars is False
    sidecar = Node.build(dataclasses.replace(cfg, blob_metadata="sidecar"))
    assert isinstance(sidecar.repository.blobs, FilesystemBlobStore)
    assert sidecar.repository.blobs.sidecars is True
    with pytest.raises(ValueError, match="blob_metadata must be 'auto' or 'sidecar', not 'xattr'"):
        Node.build(dataclasses.replace(cfg, blob_metadata="xattr"))
    for node in (auto, sidecar):
        if node.store is not None:
            node.store.dispose()
