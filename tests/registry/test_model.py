"""Typed model <-> ebRIM <-> XML, both ways (property tests), and the schema/migration agreement."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from registry import _model, _rim, _rim_write
from soap_wsdl import parse_xml, serialize

# XML 1.0 text: no control characters, no surrogates; attribute and element text survive a round trip.
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
token = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="^&|\\"),
                min_size=1, max_size=20)
codes = st.builds(_model.Code, code=token, scheme=token, display=st.one_of(st.none(), text))
authors = st.builds(_model.Author, person=st.one_of(st.none(), token), institutions=st.lists(token, max_size=2),
                    roles=st.lists(token, max_size=2), specialties=st.lists(token, max_size=2),
                    telecoms=st.lists(token, max_size=2))
texts = st.one_of(st.none(), st.builds(_model.Text, value=text, lang=st.one_of(st.none(), st.just("fr-FR")),
                                       charset=st.one_of(st.none(), st.just("UTF-8"))))
dtm = st.one_of(st.none(), st.sampled_from(["2024", "20240312", "20240312093000"]))


def roundtrip(obj: _rim.RimObject) -> _rim.RimObject:
    wire = serialize(_rim_write.write_object(obj))
    return _rim.read_object(parse_xml(wire))


@settings(max_examples=150, deadline=None)
@given(st.builds(
    _model.DocumentEntry,
    entry_uuid=token, logical_id=st.one_of(st.none(), token), version=st.one_of(st.none(), st.just("1")),
    status=st.none(), home=st.none(), mime_type=token, title=texts, comments=texts, patient_id=token,
    unique_id=token, authors=st.lists(authors, max_size=3), class_code=codes,
    confidentiality_codes=st.lists(codes, min_size=1, max_size=3), event_codes=st.lists(codes, max_size=3),
    format_code=codes, healthcare_facility_type_code=codes, practice_setting_code=codes, type_code=codes,
    creation_time=dtm, hash=st.one_of(st.none(), st.just("2fac7e66622f681a12881b4c22817b1aec4c7a00")),
    size=st.one_of(st.none(), st.integers(0, 2**40)), language_code=st.one_of(st.none(), token),
    legal_authenticator=st.one_of(st.none(), token), repository_unique_id=st.one_of(st.none(), token),
    service_start_time=dtm, service_stop_time=dtm, source_patient_id=st.one_of(st.none(), token),
    source_patient_info=st.lists(token, max_size=3), reference_ids=st.lists(token, max_size=2),
    uri=st.none(), document_availability=st.none(), extra_slots=st.just([]),
))
def test_document_entry_roundtrip(de):
    back = _model.document_entry(roundtrip(_model.document_entry_to_rim(de)))
    assert back == de


@settings(max_examples=100, deadline=None)
@given(st.builds(
    _model.SubmissionSet, entry_uuid=token, logical_id=st.none(), version=st.none(), status=st.none(),
    home=st.none(), title=texts, comments=texts, patient_id=token, unique_id=token, source_id=token,
    submission_time=dtm, authors=st.lists(authors, max_size=2), content_type_code=codes,
    intended_recipients=st.lists(token, max_size=2), extra_slots=st.just([]),
))
def test_submission_set_roundtrip(ss):
    assert _model.submission_set(roundtrip(_model.submission_set_to_rim(ss))) == ss


@settings(max_examples=100, deadline=None)
@given(st.builds(
    _model.Folder, entry_uuid=token, logical_id=st.none(), version=st.none(), status=st.none(), home=st.none(),
    title=texts, comments=texts, patient_id=token, unique_id=token, codes=st.lists(codes, min_size=1, max_size=3),
    last_update_time=dtm, extra_slots=st.just([]),
))
def test_folder_roundtrip(fd):
    assert _model.folder(roundtrip(_model.folder_to_rim(fd))) == fd


def test_association_roundtrip_keeps_slots():
    a = _model.Association(entry_uuid="a1", association_type="urn:ihe:iti:2007:AssociationType:RPLC",
                           source="s", target="t", submission_set_status=None, previous_version="2",
                           extra_slots=[_rim.Slot("urn:example:extra", ["x", "y"])])
    assert _model.association(roundtrip(_model.association_to_rim(a))) == a


def test_element_order_follows_rim_xsd():
    de = _model.DocumentEntry(entry_uuid="d", mime_type="text/plain", title=_model.Text("t"),
                              comments=_model.Text("c"), patient_id="p", unique_id="u", version="1",
                              class_code=_model.Code("10", "1.2"), creation_time="2024")
    el = _rim_write.write_object(_model.document_entry_to_rim(de))
    order = [etree.QName(c).localname for c in el]
    first = {name: order.index(name) for name in reversed(order)}
    assert first["Slot"] < first["Name"] < first["Description"] < first["VersionInfo"] < first["Classification"] \
        < first["ExternalIdentifier"]


# Any XML 1.0 character (§2.2 Char: no surrogates, no C0 controls but tab/LF/CR, not U+FFFE or U+FFFF), markup
# and whitespace that a parser would normalize included.
raw = st.text(st.one_of(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
                        st.sampled_from("&<>\"'\t\n\r]]>")),
              max_size=30)
slots = st.lists(st.builds(_rim.Slot, name=raw, values=st.lists(raw, max_size=3)), max_size=3)
strings = st.lists(st.builds(_rim.LocalizedString, value=raw, lang=st.one_of(st.none(), raw),
                             charset=st.one_of(st.none(), raw)), max_size=2)
optional = st.one_of(st.none(), raw)


@settings(max_examples=300, deadline=None)
@given(st.builds(
    _rim.RimObject, kind=st.sampled_from(_rim.Kind), id=raw, lid=optional, status=optional, object_type=optional,
    home=optional, mime_type=optional, slots=slots, name=strings, description=strings, version_name=optional,
    classifications=st.lists(st.builds(_rim.Classification, id=raw, classified_object=raw, scheme=optional,
                                       node=optional, node_representation=optional, slots=slots, name=strings),
                             max_size=3),
    external_ids=st.lists(st.builds(_rim.ExternalIdentifier, id=raw, registry_object=raw, scheme=raw, value=raw,
                                    name=optional), max_size=2),
    association_type=optional, source=optional, target=optional,
))
def test_written_text_reads_back_as_the_same_object_and_is_what_libxml2_writes(obj):
    text = _rim_write.object_xml(obj)
    el = parse_xml(text.encode())
    assert _rim.read_object(el) == obj
    # Escaping as libxml2 does it: serializing the parsed tree gives the same text back.
    assert etree.tostring(el, encoding="unicode") == text


@pytest.mark.parametrize("bad", ["\x00", "a\x01b", "\x1f", "\ufffe"])
def test_characters_xml_cannot_carry_are_refused(bad):
    obj = _rim.RimObject(_rim.Kind.ASSOCIATION, "urn:uuid:1", slots=[_rim.Slot("s", [bad])])
    with pytest.raises(ValueError, match="XML compatible"):
        _rim_write.object_xml(obj)
