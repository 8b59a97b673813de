"""DocumentFilter: the SQL predicate (stored queries) and the per-document rule (ITI-43, ITI-57) agree, on a
real SQLite database holding every combination of the attributes the filter reads; document_facts reads back
what was registered."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from registry import DocumentFacts, DocumentFilter, Origin, Store, _model
from registry._rim import Classification, ExternalIdentifier, Kind, RimObject, RimSubmission, Slot
from registry._schema import object_value, registry_object, submission_origin
from registry._visibility import document_facts, submitted_documents
from registry._vocabulary import IdScheme, Scheme

KEY = "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"
CODES = ("MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX")
PEOPLE = ("899700012349", "0751234567", "810000000029")
STRUCTURES = ("499700012349012", "499700024450014")
STATUSES = ("urn:oasis:names:tc:ebxml-regrep:StatusType:Approved", "urn:asip:ci-sis:2010:StatusType:Deleted")


def _documents() -> list[DocumentFacts]:
    out = []
    combos = itertools.product(range(2 ** len(CODES)), (*PEOPLE, None), (*PEOPLE, None), STRUCTURES, STATUSES)
    for n, (mask, author, submitter, structure, status) in enumerate(combos):
        codes = frozenset(c for i, c in enumerate(CODES) if mask >> i & 1)
        out.append(DocumentFacts(
            f"urn:uuid:00000000-0000-4000-8000-{n:012d}", f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
            f"1.2.250.1.999.{n}", KEY, status, codes, "10", "11488-4",
            frozenset({author} if author else set()), submitter, structure if submitter else None,
            submitter is None))
    return out


DOCUMENTS = _documents()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('vis') / 'r.db'}")
    s.migrate()
    with s.write() as conn:
        for n, d in enumerate(DOCUMENTS):
            ss = f"urn:uuid:10000000-0000-4000-8000-{n:012d}"
            conn.execute(insert(registry_object).values(
                id=d.entry_id, lid=d.lid, version=1, kind="DE", status=d.status, patient_key=KEY,
                unique_id=d.unique_id, submission_set_id=ss, xml="<x/>"))
            for code in d.confidentiality:
                conn.execute(insert(object_value).values(object_id=d.entry_id, attribute="confidentialityCode",
                                                         value=code, scheme="1.2.250.1.213.1.1.4.13"))
            for author in d.authors:
                conn.execute(insert(object_value).values(
                    object_id=d.entry_id, attribute="authorPerson",
                    value=f"{author}^TEST^X^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"))
            conn.execute(insert(submission_origin).values(
                submission_set_id=ss, submitter=d.submitter or KEY, structure_id=d.submitter_structure,
                by_patient=d.filed_by_patient))
    yield s
    s.dispose()


filters = st.builds(
    DocumentFilter,
    hidden_codes=st.frozensets(st.sampled_from(CODES)),
    hidden_unless_own=st.frozensets(st.sampled_from(CODES)),
    own=st.none() | st.sampled_from(PEOPLE),
    hidden_statuses=st.frozensets(st.sampled_from(STATUSES)),
    structure=st.none() | st.sampled_from(STRUCTURES),
)


@settings(max_examples=150, deadline=None)
@given(f=filters)
def test_sql_predicate_and_per_document_rule_agree(store, f):
    ro = registry_object.c
    with store.read() as conn:
        by_sql = set(conn.execute(select(ro.id).where(ro.kind == "DE", f.predicate())).scalars())
    assert by_sql == {d.entry_id for d in DOCUMENTS if f.admits(d)}


def test_document_facts_read_back(store):
    wanted = DOCUMENTS[5::37]
    with store.read() as conn:
        got = {d.entry_id: d for d in document_facts(conn, unique_ids=[d.unique_id or "" for d in wanted])}
    for d in wanted:
        back = got[d.entry_id]
        assert (back.confidentiality, back.authors, back.status) == (d.confidentiality, d.authors, d.status)
        if d.submitter:
            assert (back.submitter, back.submitter_structure) == (d.submitter, d.submitter_structure)


def test_content_changed_ignores_version_identity_and_confidentiality_only():
    from dataclasses import replace

    from registry import Code, DocumentEntry, Text, content_changed

    before = DocumentEntry(entry_uuid="urn:uuid:1", title=Text("CR", "fr-FR"), class_code=Code("10", "1.2.3"),
                           confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25")], hash="ab", size=3)
    masked = replace(before, entry_uuid="urn:uuid:2", logical_id="urn:uuid:1", version="2", hash=None, size=None,
                     confidentiality_codes=[*before.confidentiality_codes, Code("MASQUE_PS", "1.2.250.1.213.1.1.4.13")])
    assert not content_changed(before, masked)
    assert content_changed(before, replace(masked, title=Text("Autre titre", "fr-FR")))
    assert content_changed(before, replace(masked, class_code=Code("11", "1.2.3")))


# --- submitted_documents: the facts of a submission's DocumentEntries, read without the typed model ---------------

_SCHEMES = [s.uuid for s in (Scheme.DE_CLASS_CODE, Scheme.DE_TYPE_CODE, Scheme.DE_CONFIDENTIALITY_CODE,
                             Scheme.DE_AUTHOR, Scheme.DE_FORMAT_CODE)] + [None]
_SHORT = st.text(alphabet="ab^&1.", max_size=6)
_CLASSIFICATIONS = st.builds(
    Classification, id=st.just("c"), classified_object=st.just("urn:uuid:e1"), scheme=st.sampled_from(_SCHEMES),
    node_representation=st.none() | _SHORT,
    slots=st.lists(st.builds(Slot, name=st.sampled_from(["authorPerson", "authorRole", "codingScheme"]),
                             values=st.lists(_SHORT, max_size=2)), max_size=3))
_ENTRIES = st.builds(
    RimObject, kind=st.sampled_from([Kind.EXTRINSIC_OBJECT, Kind.ASSOCIATION]), id=st.just("urn:uuid:e1"),
    lid=st.none() | st.just("urn:uuid:l1"), classifications=st.lists(_CLASSIFICATIONS, max_size=8),
    external_ids=st.lists(st.builds(ExternalIdentifier, id=st.just("x"), registry_object=st.just("urn:uuid:e1"),
                                    scheme=st.sampled_from([IdScheme.DE_UNIQUE_ID.uuid, IdScheme.DE_PATIENT_ID.uuid]),
                                    value=_SHORT), max_size=2))


def _through_the_model(sub: RimSubmission, key: str, origin: Origin | None) -> list[DocumentFacts]:
    """The facts as the typed model gives them (what submitted_documents computed before issue 13)."""
    out = []
    for o in sub.objects:
        if o.kind is not Kind.EXTRINSIC_OBJECT:
            continue
        de = _model.document_entry(o)
        out.append(DocumentFacts(
            entry_id=o.id, lid=o.lid or o.id, unique_id=de.unique_id, patient_key=key,
            confidentiality=frozenset(c.code for c in de.confidentiality_codes),
            class_code=de.class_code.code if de.class_code else None,
            type_code=de.type_code.code if de.type_code else None,
            authors=frozenset(a.person.split("^", 1)[0] for a in de.authors if a.person),
            submitter=origin.submitter if origin else None, submitter_structure=origin.structure if origin else None,
            filed_by_patient=origin.by_patient if origin else False))
    return out


@given(st.lists(_ENTRIES, max_size=3), st.none() | st.builds(Origin, submitter=_SHORT, structure=st.none() | _SHORT,
                                                             by_patient=st.booleans()))
def test_submitted_documents_are_the_facts_of_the_typed_model(objects, origin):
    sub = RimSubmission(objects=objects)
    assert submitted_documents(sub, "P1", origin) == _through_the_model(sub, "P1", origin)
