"""``_checks.Known.load`` on PostgreSQL: its look-ups of patients, registered ids and uniqueIds made in one
statement (one round trip) find exactly what the three separate look-ups find, on a plain and on a
hash-partitioned registry, whatever mix of known and unknown values is asked for."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import xds_factory as f
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nodes import database_url
from sqlalchemy import select

from registry import Registry, Store
from registry._checks import Known
from registry._schema import registry_object

OPEN, CLOSED = f.PATIENT, "184127645108946^^^&1.2.250.1.213.1.4.10&ISO"
UNKNOWN = "Z-unknown^^^&1.2.250.1.213.1.4.10&ISO"


@pytest.fixture(scope="module", params=["postgresql", "postgresql-partitioned"])
def registered(request: pytest.FixtureRequest) -> Iterator[tuple[Store, dict[str, list[str]]]]:
    """A registry with two patients (one closed), documents (one uniqueId registered twice, for the same
    document), and the values a look-up may ask for: registered ones and unknown ones."""
    store = Store(database_url("postgresql", request) or "")
    store.migrate(partitions=4 if request.param == "postgresql-partitioned" else 0)
    registry = Registry(store)
    registry.create_patients([OPEN, CLOSED])
    twice = f.Doc(b"same bytes", "Twice", patient_id=OPEN)
    for patient, docs in ((OPEN, [twice, f.Doc(b"a", "A", patient_id=OPEN)]), (OPEN, [twice]),
                          (CLOSED, [f.Doc(b"b", "B", patient_id=CLOSED)])):
        response = registry.register_request(f.submit_objects_request(
            docs, ss=f.submission_set(patient), repository_attributes=True))
        assert not response.errors, response
    with store.write() as conn:
        Registry.set_patient_closed(conn, registry_key(CLOSED), "20240101000000")
        ro = registry_object.c
        objects = conn.execute(select(ro.id, ro.unique_id)).all()
    values = {
        "keys": [registry_key(OPEN), registry_key(CLOSED), registry_key(UNKNOWN)],
        "ids": [o.id for o in objects] + [f"urn:uuid:{uuid.uuid4()}" for _ in range(3)],
        "unique_ids": [*sorted({o.unique_id for o in objects if o.unique_id}), "1.2.3.4.unknown", "9.9"],
    }
    yield store, values
    store.dispose()


def registry_key(patient_id: str) -> str:
    from registry import patient_key

    return patient_key(patient_id)


def _found(k: Known) -> tuple[Any, ...]:
    return (k.patients, k.objects, k.package_unique_ids,
            {u: sorted(found, key=repr) for u, found in k.document_unique_ids.items()})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_look_up_finds_what_three_find(registered, data):
    store, values = registered
    keys = data.draw(st.sets(st.sampled_from(values["keys"])))
    ids = data.draw(st.sets(st.sampled_from(values["ids"])))
    packages = data.draw(st.sets(st.sampled_from(values["unique_ids"])))
    documents = data.draw(st.sets(st.sampled_from(values["unique_ids"])))
    together, apart = Known(), Known()
    with store.read() as conn:
        together._load_together(conn, keys, ids, packages, documents)
        apart._load_apart(conn, keys, ids, packages, documents)

    assert _found(together) == _found(apart)


def test_everything_registered_is_found(registered):
    """The look-ups above compare something: asked for everything, both find the patients (one closed), every
    registered object and the uniqueIds of both kinds (the document registered twice: two entries)."""
    store, values = registered
    k = Known()
    everything = set(values["unique_ids"])
    with store.read() as conn:
        k._load_together(conn, set(values["keys"]), set(values["ids"]), everything, everything)

    assert k.patients == {registry_key(OPEN): None, registry_key(CLOSED): "20240101000000"}
    assert len(k.objects) == len(values["ids"]) - 3
    assert len(k.package_unique_ids) == 3
    assert sorted(len(found) for found in k.document_unique_ids.values()) == [1, 1, 2]
