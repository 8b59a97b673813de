"""The compact stored form of a registry object's ebRIM XML (docs/registry-storage.md).

The registry keeps each object's XML text so that a LeafClass answer splices it unchanged. Most of that text
is the same for every object: element and slot names, the XDS classification and identification scheme UUIDs
(ITI TF-3 4.2.5), the DMP's coding-scheme OIDs. The stored form is the UTF-8 text compressed with Zstandard
(RFC 8878, with its content checksum: a damaged value is detected) against a raw-content dictionary of that
boilerplate, so only what is particular to the object costs bytes: a DocumentEntry of ~6 KB takes ~0.8 KB,
against ~2.3 KB with PostgreSQL's lz4 of the text alone, which starts every value from nothing. Zstandard
rather than zlib's preset dictionary (same size): decompressing is ~9 times faster (~6 against ~50 us per
DocumentEntry), and a FindDocuments answer decompresses 100 of them.

The first byte names the dictionary (``1``: :data:`_DICTIONARY_1`). A dictionary is part of the format of
stored data: it is never edited; another one would be a new version, and :func:`decode` keeps reading the old.
Decoding gives back exactly the encoded text (``decode(encode(t)) == t``), so answers stay byte for byte what
they were when the text itself was stored."""

from __future__ import annotations

import threading

import zstandard

_SLOT = '<rim:Slot name="{}"><rim:ValueList><rim:Value>'
_CODED = ('" nodeRepresentation="{}"><rim:Slot name="codingScheme"><rim:ValueList><rim:Value>{}</rim:Value>'
          '</rim:ValueList></rim:Slot><rim:Name><rim:LocalizedString value="')

# Version 1. Matches nearer the end of the dictionary are cheaper to refer to: the most frequent fragments come
# last. Never edit (see the module's docstring).
_DICTIONARY_1 = "".join([
    # Rarer objects and values: Folders, other association types, statuses, on-demand entries.
    '<rim:RegistryPackage xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="urn:uuid:',
    'classificationNode="urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"/>',
    'classificationScheme="urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5" classifiedObject="urn:uuid:',
    'identificationScheme="urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a" value="',
    '<rim:Name><rim:LocalizedString value="XDSFolder.patientId"/></rim:Name></rim:ExternalIdentifier>',
    'identificationScheme="urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a" value="',
    '<rim:Name><rim:LocalizedString value="XDSFolder.uniqueId"/></rim:Name></rim:ExternalIdentifier>',
    _SLOT.format("lastUpdateTime"),
    'associationType="urn:ihe:iti:2007:AssociationType:RPLC" sourceObject="urn:uuid:',
    'associationType="urn:ihe:iti:2007:AssociationType:APND" sourceObject="urn:uuid:',
    'associationType="urn:ihe:iti:2007:AssociationType:XFRM" sourceObject="urn:uuid:',
    'associationType="urn:ihe:iti:2007:AssociationType:XFRM_RPLC" sourceObject="urn:uuid:',
    'associationType="urn:ihe:iti:2007:AssociationType:signs" sourceObject="urn:uuid:',
    'urn:ihe:iti:2010:AssociationType:IsSnapshotOf', 'urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus',
    '<rim:Slot name="OriginalStatus"><rim:ValueList><rim:Value>', '<rim:Slot name="NewStatus"><rim:ValueList>'
    '<rim:Value>', 'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated',
    'urn:asip:ci-sis:2010:StatusType:Archived', 'urn:asip:ci-sis:2010:StatusType:Deleted',
    'objectType="urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"', _SLOT.format("documentAvailability"),
    'urn:ihe:iti:2010:DocumentAvailability:Online', _SLOT.format("logicalID"), _SLOT.format("version"),
    _SLOT.format("referenceIdList"), _SLOT.format("legalAuthenticator"), _SLOT.format("URI"),
    _SLOT.format("intendedRecipient"), _SLOT.format("authorTelecommunication"), _SLOT.format("homeCommunityId"),
    _SLOT.format("comments"), '<rim:Description><rim:LocalizedString xml:lang="fr-FR" value="',
    '"/></rim:Description>', 'urn:ihe:iti:xds:2013:referral', 'urn:ihe:iti:xds:2013:order',
    'urn:ihe:iti:xds:2013:accession', '^^^^^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO', '^^^&amp;1.2.250.1.213.1.4.8&amp;ISO',
    # Codes and coding schemes of the DMP (CI-SIS value sets) and of IHE/HL7.
    '1.2.250.1.213.1.1.4.12', '1.2.250.1.213.1.1.4.13', '1.2.250.1.213.1.1.4.2.282', '1.2.250.1.213.1.1.5',
    '1.3.6.1.4.1.19376.1.2.3', 'urn:ihe:iti:xds-sd:pdf:2008', 'urn:ihe:iti:xds-sd:text:2008',
    'urn:asip:ci-sis:', '2.16.840.1.113883.6.1', '2.16.840.1.113883.6.96', '1.2.250.1.213.2.2',
    '1.2.250.1.213.1.1.4.1', '1.2.250.1.213.1.1.4.9', '1.2.250.1.71.4.2.4', '1.2.250.1.71.4.2.5',
    'MASQUE_PS', 'INVISIBLE_PATIENT', 'INVISIBLE_REPRESENTANTS_LEGAUX', 'Non visible par le patient',
    'Normal', 'Médecin', 'Compte rendu', 'Etablissement', '2.16.840.1.113883.5.25',
    'application/pdf', 'text/xml', 'text/plain', 'fr-FR',
    # The SubmissionSet.
    '<rim:RegistryPackage xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="urn:uuid:',
    '" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage">',
    _SLOT.format("submissionTime"),
    '<rim:Classification id="urn:uuid:',
    '" classifiedObject="urn:uuid:',
    '" classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>',
    'classificationScheme="urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d" classifiedObject="urn:uuid:',
    'classificationScheme="urn:uuid:aa543740-bdda-424e-8c96-df4873be8500" classifiedObject="urn:uuid:',
    _CODED.format("04", "1.2.250.1.213.2.2"),
    'identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="',
    '"><rim:Name><rim:LocalizedString value="XDSSubmissionSet.uniqueId"/></rim:Name></rim:ExternalIdentifier>',
    'identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="',
    '"><rim:Name><rim:LocalizedString value="XDSSubmissionSet.sourceId"/></rim:Name></rim:ExternalIdentifier>',
    'identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="',
    '"><rim:Name><rim:LocalizedString value="XDSSubmissionSet.patientId"/></rim:Name></rim:ExternalIdentifier>',
    '</rim:RegistryPackage>',
    # The DocumentEntry, in the order the writer puts its parts (registry._rim_write).
    '<rim:ExtrinsicObject xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="urn:uuid:',
    '" lid="urn:uuid:',
    '" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1" mimeType="',
    _SLOT.format("creationTime"), '</rim:Value></rim:ValueList></rim:Slot>', _SLOT.format("hash"),
    _SLOT.format("languageCode"), 'fr-FR</rim:Value></rim:ValueList></rim:Slot>',
    _SLOT.format("repositoryUniqueId"), _SLOT.format("serviceStartTime"), _SLOT.format("serviceStopTime"),
    _SLOT.format("size"), _SLOT.format("sourcePatientId"), '^^^&amp;', '&amp;ISO</rim:Value>',
    _SLOT.format("sourcePatientInfo"), 'PID-5|', '^^^^^L</rim:Value><rim:Value>PID-7|',
    '</rim:Value><rim:Value>PID-8|', '</rim:Value></rim:ValueList></rim:Slot><rim:Name><rim:LocalizedString '
    'xml:lang="fr-FR" value="', '"/></rim:Name><rim:VersionInfo versionName="1"/>',
    '<rim:Classification id="urn:uuid:',
    '" classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="urn:uuid:',
    '" nodeRepresentation="">', _SLOT.format("authorPerson"), '^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO',
    _SLOT.format("authorInstitution"), '^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^^^^',
    _SLOT.format("authorRole"), _SLOT.format("authorSpecialty"), '^^1.2.250.1.71.4.2.5</rim:Value>',
    '</rim:ValueList></rim:Slot></rim:Classification>',
    '<rim:Classification id="urn:uuid:',
    '" classificationScheme="urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4" classifiedObject="urn:uuid:',
    '" classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a" classifiedObject="urn:uuid:',
    _CODED.format("10", "1.2.250.1.213.1.1.4.1"),
    '" classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f" classifiedObject="urn:uuid:',
    _CODED.format("N", "2.16.840.1.113883.5.25") + 'Normal"/></rim:Name></rim:Classification>',
    '" classificationScheme="urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d" classifiedObject="urn:uuid:',
    _CODED.format("urn:asip:ci-sis:", "1.2.250.1.213.1.1.4.2.282"),
    '" classificationScheme="urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1" classifiedObject="urn:uuid:',
    _CODED.format("SA", "1.2.250.1.71.4.2.4"),
    '" classificationScheme="urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead" classifiedObject="urn:uuid:',
    _CODED.format("", "1.2.250.1.213.1.1.4.9"),
    '" classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983" classifiedObject="urn:uuid:',
    _CODED.format("", "2.16.840.1.113883.6.1"),
    '"/></rim:Name></rim:Classification>',
    '<rim:ExternalIdentifier id="urn:uuid:', '" registryObject="urn:uuid:',
    '" identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="',
    '^^^&amp;1.2.250.1.213.1.4.10&amp;ISO"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/>'
    '</rim:Name></rim:ExternalIdentifier>',
    '<rim:ExternalIdentifier id="urn:uuid:', '" registryObject="urn:uuid:',
    '" identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="',
    '"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name></rim:ExternalIdentifier>'
    '</rim:ExtrinsicObject>',
    # The HasMember Association of every submission, the most frequent object.
    '<rim:Association xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="urn:uuid:',
    '" lid="urn:uuid:',
    '" associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember" sourceObject="urn:uuid:',
    '" targetObject="urn:uuid:',
    '"><rim:Slot name="SubmissionSetStatus"><rim:ValueList><rim:Value>Original</rim:Value></rim:ValueList>'
    '</rim:Slot><rim:VersionInfo versionName="1"/></rim:Association>',
]).encode()

_VERSION = 1
# Level 3: in the ITI-41 pipeline (cold caches) compressing a submission's objects costs ~0.12 ms of CPU at
# level 3 against ~0.22 ms at level 6, for ~15 % more stored bytes (~0.17 GiB more per million DocumentEntries,
# docs/registry-storage.md); 4 and 5 cost nearly as much as 6; 9 and above are as small as 6 and slower
# (benchmarks/cpu_stored_form.py). The level changes only the bytes written: any level's output decodes the same.
_LEVEL = 3
_DICTIONARIES = {1: zstandard.ZstdCompressionDict(_DICTIONARY_1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)}


class _Codecs(threading.local):
    """Zstandard's (de)compressor objects may not be shared between threads: one pair per thread."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=_LEVEL, dict_data=_DICTIONARIES[_VERSION],
                                                   write_checksum=True, write_content_size=True,
                                                   write_dict_id=False)
        self.decompressors = {v: zstandard.ZstdDecompressor(dict_data=d) for v, d in _DICTIONARIES.items()}


_codecs = _Codecs()


def encode(xml: str) -> bytes:
    """The stored form of ``xml``."""
    return bytes((_VERSION,)) + _codecs.compressor.compress(xml.encode())


def decode(stored: bytes) -> str:
    """The text :func:`encode` was given. Raises ValueError for a value that is not a stored form."""
    try:
        return decode_utf8(stored).decode()
    except UnicodeDecodeError as damaged:
        raise ValueError(f"damaged stored form: {damaged}") from damaged


def decode_utf8(stored: bytes) -> bytes:
    """The UTF-8 bytes of the text :func:`encode` was given, as a LeafClass answer splices them (decoding them
    to ``str`` and encoding the answer back was a copy and a UTF-8 pass of ~6 KB per DocumentEntry). The
    content checksum has been checked; the bytes are not checked to be UTF-8 (:func:`encode` made them from a
    text). Raises ValueError for a value that is not a stored form."""
    decompressor = _codecs.decompressors.get(stored[0]) if stored else None
    if decompressor is None:
        raise ValueError(f"not a stored form of this registry (version byte {bytes(stored[:1])!r})")
    try:
        return decompressor.decompress(memoryview(stored)[1:])
    except zstandard.ZstdError as damaged:
        raise ValueError(f"damaged stored form: {damaged}") from damaged
