"""A registration's access-history entry (``record``) is written in its transaction before the registration's
rows, so that the dossier row it locks is the first lock of every work about a patient (``Registry._transaction``;
docs/architecture.md, "Group commit"); a refused registration keeps neither."""

from __future__ import annotations

from pathlib import Path

import xds_factory as f
from sqlalchemy import Connection, func, insert, select

from registry import Registry, Store
from registry._rim import RimSubmission
from registry._schema import patient, registry_object


class CountingRecord:
    """A record that notes how many registry objects exist when it runs, and writes a row of its own (a patient
    ``MARK``) as a history entry would."""

    lock_order = "patient"

    def __init__(self) -> None:
        self.objects_seen: list[int] = []

    def __call__(self, conn: Connection) -> None:
        self.objects_seen.append(conn.execute(select(func.count()).select_from(registry_object)).scalar_one())
        conn.execute(insert(patient).values(patient_key=MARK, created_at="20260101000000"))


MARK = "recorded"


def _registry(tmp_path: Path) -> Registry:
    store = Store(f"sqlite:///{tmp_path / 'registry.db'}")
    store.migrate()
    registry = Registry(store)
    registry.create_patient(f.PATIENT)
    return registry


def _marked(registry: Registry) -> bool:
    with registry.store.read() as conn:
        return conn.execute(select(patient.c.patient_key).where(patient.c.patient_key == MARK)).first() is not None


def _objects(registry: Registry) -> int:
    with registry.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(registry_object)).scalar_one())


def test_the_record_runs_before_the_registration_writes_its_rows(tmp_path):
    registry = _registry(tmp_path)
    record = CountingRecord()
    sub = Registry.read_request(f.submit_objects_request([f.Doc(b"x", "X")], repository_attributes=True))
    assert isinstance(sub, RimSubmission)
    response = registry.register_submission(sub, record=record)   # type: ignore[arg-type]
    assert not response.errors, response
    assert record.objects_seen == [0]
    assert _objects(registry) > 0
    assert _marked(registry)


def test_a_refused_registration_keeps_neither_its_rows_nor_its_record(tmp_path):
    registry = _registry(tmp_path)
    record = CountingRecord()
    unknown = "Z-unknown^^^&1.2.250.1.213.1.4.10&ISO"
    sub = Registry.read_request(f.submit_objects_request(
        [f.Doc(b"x", "X", patient_id=unknown)], ss=f.submission_set(unknown), repository_attributes=True))
    assert isinstance(sub, RimSubmission)
    response = registry.register_submission(sub, record=record)   # type: ignore[arg-type]
    assert response.errors
    assert record.objects_seen == [0]      # it ran, and was undone with the registration
    assert _objects(registry) == 0
    assert not _marked(registry)
