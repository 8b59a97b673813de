"""The S3 blob store against a real SeaweedFS on 127.0.0.1: pending attempts invisible, commit, removal,
recovery with its lease, concurrent attempts of one uniqueId, multipart uploads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from seaweed import SeaweedServer

from repository import BlobStoreUnavailable, S3BlobStore, S3Location
from server.cli import main

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.remove()


def store_for(seaweed: SeaweedServer, tmp_path: Path, *, lease_s: float = 900.0, bucket: str | None = None,
              prefix: str = "dmp") -> S3BlobStore:
    bucket = bucket or seaweed.create_bucket()
    return S3BlobStore(S3Location(bucket, f"{prefix}/"), tmp_path / "spool", client=seaweed.client(),
                       lease_s=lease_s, part_size=5 * MiB)


def spooled(tmp_path: Path, content: bytes) -> tuple[Path, str]:
    path = tmp_path / f"part-{hashlib.sha1(content).hexdigest()[:8]}"
    path.write_bytes(content)
    return path, hashlib.sha1(content).hexdigest()


def read(store: S3BlobStore, uid: str) -> bytes | None:
    info = store.get(uid)
    if info is None:
        return None
    assert not isinstance(info.content, Path)
    return b"".join(info.content)


def keys(seaweed: SeaweedServer, store: S3BlobStore) -> list[str]:
    listed = seaweed.client().list_objects_v2(Bucket=store.location.bucket)
    return sorted(o["Key"] for o in listed.get("Contents") or [])


def test_location_is_parsed_and_a_bad_url_named():
    assert S3Location.parse("s3://docs") == S3Location("docs", "")
    assert S3Location.parse("s3://docs/dmp/prod/") == S3Location("docs", "dmp/prod/")
    for bad in ("docs", "http://docs/x", "s3:///x", "s3://docs/x?y=1"):
        with pytest.raises(ValueError, match="s3://BUCKET"):
            S3Location.parse(bad)


def test_pending_until_committed_then_served_with_its_metadata(seaweed, tmp_path):
    store = store_for(seaweed, tmp_path)
    content = b"\x00compte rendu\r\n" * 100
    source, sha1 = spooled(tmp_path, content)
    pending = store.add("1.2.3.4", source, mime_type="text/xml", size=len(content), sha1=sha1)
    assert pending is not None
    assert store.get("1.2.3.4") is None                  # stored, not registered: nobody serves it
    store.commit([pending])
    info = store.get("1.2.3.4")
    assert (info.mime_type, info.size, info.sha1) == ("text/xml", len(content), sha1)
    assert read(store, "1.2.3.4") == content
    assert all(k.startswith("dmp/docs/") for k in keys(seaweed, store))   # no marker left
    # already stored: the registry decides about a second submission, the stored one is never replaced
    assert store.add("1.2.3.4", source, mime_type="text/xml", size=len(content), sha1=sha1) is None


def test_a_multipart_document_is_byte_exact(seaweed, tmp_path):
    store = store_for(seaweed, tmp_path)
    content = os.urandom(12 * MiB + 12345)   # three parts of 5 MiB, the last one short
    source, sha1 = spooled(tmp_path, content)
    pending = store.add("1.2.3.5", source, mime_type="application/pdf", size=len(content), sha1=sha1)
    store.commit([pending])
    assert hashlib.sha1(read(store, "1.2.3.5")).hexdigest() == sha1
    assert store.get("1.2.3.5").size == len(content)


def test_removed_attempt_leaves_nothing(seaweed, tmp_path):
    store = store_for(seaweed, tmp_path)
    source, sha1 = spooled(tmp_path, b"refused by the registry")
    pending = store.add("1.2.3.6", source, mime_type="text/plain", size=23, sha1=sha1)
    store.remove([pending])
    assert keys(seaweed, store) == []
    assert store.get("1.2.3.6") is None


def test_two_attempts_of_one_unique_id_never_remove_each_other(seaweed, tmp_path):
    """Two nodes store the same uniqueId at once; the registry accepts one. Removing the refused attempt
    must leave the accepted one whole (a single key per uniqueId would lose it)."""
    store = store_for(seaweed, tmp_path)
    a, sha_a = spooled(tmp_path, b"version A")
    b, sha_b = spooled(tmp_path, b"version B, other content")
    first = store.add("1.2.3.7", a, mime_type="text/plain", size=9, sha1=sha_a)
    second = store.add("1.2.3.7", b, mime_type="text/plain", size=24, sha1=sha_b)
    assert first is not None
    assert second is not None
    store.commit([first])
    store.remove([second])
    assert read(store, "1.2.3.7") == b"version A"


def test_recovery_removes_stale_unregistered_attempts_and_keeps_the_rest(seaweed, tmp_path):
    bucket = seaweed.create_bucket()
    crashed = store_for(seaweed, tmp_path / "a", bucket=bucket, lease_s=0.0)
    doc = {}
    for uid in ("1.9.1", "1.9.2", "1.9.3"):
        source, sha1 = spooled(tmp_path, uid.encode() * 10)
        doc[uid] = crashed.add(uid, source, mime_type="text/plain", size=len(uid) * 10, sha1=sha1)
    # 1.9.1 was registered before the crash, 1.9.2 was not, 1.9.3 the registry cannot tell
    answers = {"1.9.1": True, "1.9.2": False, "1.9.3": None}
    removed = crashed.recover(answers.__getitem__)
    assert removed == ["1.9.2"]
    assert read(crashed, "1.9.1") == b"1.9.1" * 10
    assert crashed.get("1.9.2") is None
    assert crashed.get("1.9.3") is None               # still pending, never served
    assert any(k.startswith("dmp/pending/") for k in keys(seaweed, crashed))
    assert not any(doc["1.9.2"].marker in k for k in keys(seaweed, crashed))


def test_recovery_leaves_an_upload_in_progress_on_another_node_alone(seaweed, tmp_path):
    bucket = seaweed.create_bucket()
    uploading = store_for(seaweed, tmp_path / "a", bucket=bucket)
    source, sha1 = spooled(tmp_path, b"on its way")
    pending = uploading.add("1.9.9", source, mime_type="text/plain", size=10, sha1=sha1)
    client = seaweed.client()
    started = client.create_multipart_upload(Bucket=bucket, Key="dmp/docs/ab/abcd/attempt")   # mid-upload
    other = store_for(seaweed, tmp_path / "b", bucket=bucket, lease_s=600)
    assert other.recover(lambda uid: False) == []      # the marker is fresh: not a crashed upload
    uploading.commit([pending])
    assert read(other, "1.9.9") == b"on its way"
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads") or []
    assert [u["UploadId"] for u in uploads] == [started["UploadId"]]
    # past the lease the unfinished upload is a crashed one: aborted
    store_for(seaweed, tmp_path / "c", bucket=bucket, lease_s=0.0).recover(lambda uid: False)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_store_down_is_a_storage_failure_and_nothing_stays_visible(tmp_path):
    server = SeaweedServer(tmp_path / "weed")
    server.start()
    try:
        store = store_for(server, tmp_path)
        source, sha1 = spooled(tmp_path, b"x" * 100)
        server.kill()
        with pytest.raises(BlobStoreUnavailable, match="object storage"):
            store.add("1.8.1", source, mime_type="text/plain", size=100, sha1=sha1)
        with pytest.raises(BlobStoreUnavailable):
            store.get("1.8.1")
        server.start()
        assert store.get("1.8.1") is None
        pending = store.add("1.8.1", source, mime_type="text/plain", size=100, sha1=sha1)
        store.commit([pending])
        assert read(store, "1.8.1") == b"x" * 100
    finally:
        server.remove()


def test_dmp_init_selects_the_s3_store_and_keeps_credentials_out_of_the_config(seaweed, tmp_path, monkeypatch):
    for name, value in seaweed.environment.items():
        monkeypatch.setenv(name, value)
    bucket = seaweed.create_bucket()
    runner = CliRunner()
    r = runner.invoke(main, ["init", "--data", str(tmp_path / "n"), "--blob-store-url", f"s3://{bucket}/dmp",
                             "--s3-endpoint-url", seaweed.endpoint_url])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "n" / "config.json").read_text()
    assert f'"blob_store_url": "s3://{bucket}/dmp"' in text
    assert f'"s3_endpoint_url": "{seaweed.endpoint_url}"' in text
    assert seaweed.environment["AWS_SECRET_ACCESS_KEY"] not in text
    assert seaweed.environment["AWS_ACCESS_KEY_ID"] not in text
    r = runner.invoke(main, ["init", "--data", str(tmp_path / "m"), "--blob-store-url", "s3://no-such-bucket-here",
                             "--s3-endpoint-url", seaweed.endpoint_url])
    assert r.exit_code == 2
    assert "bucket 'no-such-bucket-here'" in r.output
    r = runner.invoke(main, ["init", "--data", str(tmp_path / "o"), "--blob-store-url", "bucket/x"])
    assert r.exit_code == 2
    assert "s3://BUCKET[/PREFIX]" in r.output
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    r = runner.invoke(main, ["init", "--data", str(tmp_path / "p"), "--blob-store-url", f"s3://{bucket}",
                             "--s3-endpoint-url", seaweed.endpoint_url])
    assert r.exit_code == 2, r.output
    assert f"bucket '{bucket}'" in r.output


class RecordingClient:
    """The real S3 client, recording the keys of the objects it puts (to see the marker renewed)."""

    def __init__(self, client: object) -> None:
        self._client = client
        self.put_keys: list[str] = []

    def put_object(self, **kwargs: object) -> object:
        self.put_keys.append(str(kwargs["Key"]))
        return self._client.put_object(**kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


def test_a_long_upload_renews_its_marker_so_no_recovery_takes_it(seaweed, tmp_path):
    client = RecordingClient(seaweed.client())
    store = S3BlobStore(S3Location(seaweed.create_bucket(), ""), tmp_path / "spool", client=client,
                        lease_s=0.0, part_size=5 * MiB)   # lease 0: renewed after every part
    content = os.urandom(11 * MiB)
    source, sha1 = spooled(tmp_path, content)
    pending = store.add("1.7.1", source, mime_type="text/plain", size=len(content), sha1=sha1)
    markers = [k for k in client.put_keys if k.startswith("pending/")]
    assert len(markers) == 1 + 3        # written before the upload, then once per part
    assert set(markers) == {f"pending/{hashlib.sha256(b'1.7.1').hexdigest()}.{pending.marker}"}
