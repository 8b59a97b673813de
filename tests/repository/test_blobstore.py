"""The filesystem blob store's directories (issue 13, defect 7: refused submissions left empty ones)."""

from __future__ import annotations

from pathlib import Path

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
