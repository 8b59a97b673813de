"""Realistic registry content for the scale benchmark, deterministic from a seed: patients with valid INS-NIR,
ITI-42 submissions of 1-4 DocumentEntries (each with its SubmissionSet and HasMember associations), varied codes
(class, type, format, facility, practice, confidentiality, events), authors from a pool of physicians, and
creation/service times spread over 2012-2025 in the order each patient's documents were produced.

Every id is a ``urn:uuid:`` (as in an import from an existing registry), derived from (patient, document index),
so a query phase can name documents without keeping them: :meth:`Corpus.entry_uuid`, :meth:`Corpus.unique_id`.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from registry import RimObject, RimSubmission
from registry._model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    SubmissionSet,
    Text,
    association_to_rim,
    document_entry_to_rim,
    submission_set_to_rim,
)
from registry._vocabulary import AssociationType

NS = uuid.UUID("6f1c1d9e-3f51-4d0a-9a57-4c1b2f0b7a10")
INS_OID = "1.2.250.1.213.1.4.10"  # INS-NIR
REPOSITORY_ID = "1.2.250.1.999.1.1.8121.3"
UID_ROOT = "1.2.250.1.999.1.1.8121.7"
SIZES, SIZE_WEIGHTS = (1, 2, 3, 4), (40, 30, 20, 10)  # DocumentEntries per submission: mean 2.0

# DMP-valid codes (registry/valuesets: JDV_J57/J66 with the ASS_X16 type -> class correspondence, J60, J61, J62).
_CLASS_LABELS = {"10": "Compte rendu", "11": "Synthèse", "31": "Imagerie médicale", "42": "Prescription",
                 "43": "Dispensation"}
_TYPE = [("11488-4", "CR de consultation", "10"), ("34133-9", "Synthèse d'épisode de soins", "11"),
         ("18748-4", "CR d'imagerie médicale", "31"), ("11502-2", "CR d'examens biologiques", "10"),
         ("57833-6", "Prescription de médicaments", "42"), ("60593-1", "Dispensation médicamenteuse", "43"),
         ("11490-0", "Lettre de sortie", "10"), ("34794-8", "CR de RCP", "10"),
         ("15507-7", "CR de passage aux urgences", "10"), ("34874-8", "CR opératoire", "10"),
         ("52040-3", "Document de radiothérapie", "31"), ("47420-5", "Bilan fonctionnel", "10"),
         ("11526-1", "CR d'anatomo-pathologie", "10"), ("18761-7", "Note de transfert", "11"),
         ("60591-5", "Synthèse médicale", "11")]
_FORMAT = [("urn:ihe:iti:xds-sd:pdf:2008", "PDF"), ("urn:ihe:iti:xds-sd:text:2008", "Texte"),
           ("urn:asip:ci-sis:vsm:2012", "VSM"), ("urn:asip:ci-sis:ldl-ses:2017", "LDL-SES")]
_FORMAT_SCHEMES = {"urn:ihe:iti:xds-sd:pdf:2008": "1.3.6.1.4.1.19376.1.2.3",
                   "urn:ihe:iti:xds-sd:text:2008": "1.3.6.1.4.1.19376.1.2.3"}
_HCFT = [("SA01", "Etablissement public de santé"), ("SA05", "Centre de santé"), ("SA07", "Cabinet individuel"),
         ("SA29", "Laboratoire d'analyses et de biologie médicale"), ("SA52", "Maison de santé ou Pôle de santé")]
_PRACTICE = [("ETABLISSEMENT", "Etablissement de santé"), ("AMBULATOIRE", "Ambulatoire"),
             ("SAMU_SMUR", "SAMU/SMUR"), ("HAD", "Hospitalisation à domicile")]
_EVENTS = [(f"E{n:03d}", f"Acte {n}") for n in range(40)]
_MIME = ["application/pdf", "text/xml", "text/plain"]
_TITLES = ["Compte rendu de consultation", "Lettre de liaison", "Résultats de biologie", "Ordonnance",
           "Compte rendu d'imagerie", "Synthèse médicale", "Compte rendu opératoire"]
_FAMILY = ["MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU"]
_GIVEN = ["Claire", "Paul", "Sophie", "Jean", "Anne", "Luc", "Marie", "Marc", "Julie", "Louis"]


def nir(p: int) -> str:
    """A valid NIR (13 digits + key) unique for each p < 10**6."""
    body = f"{1 + p % 2}{50 + p % 50:02d}{1 + p % 12:02d}75{p // 1000 % 1000:03d}{p % 1000:03d}"
    return body + f"{97 - int(body) % 97:02d}"


def patient_id(p: int) -> str:
    return f"{nir(p)}^^^&{INS_OID}&ISO"


def _named_uuid(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(NS, name)}"


def _rpps(n: int) -> str:
    return f"8{n:010d}"


@dataclass(frozen=True)
class Corpus:
    seed: int = 1
    per_patient: int = 100

    def entry_uuid(self, p: int, d: int) -> str:
        return _named_uuid(f"de/{self.seed}/{p}/{d}")

    def unique_id(self, p: int, d: int) -> str:
        return f"{UID_ROOT}.{self.seed}.1.{p}.{d}"

    def plan(self, p: int) -> list[int]:
        """Sizes of patient ``p``'s submissions, in the order they were sent (sum: ``per_patient``)."""
        rng, sizes, left = random.Random(f"{self.seed}/plan/{p}"), [], self.per_patient
        while left:
            sizes.append(min(left, rng.choices(SIZES, SIZE_WEIGHTS)[0]))
            left -= sizes[-1]
        return sizes

    def submissions(self, first: int, last: int) -> Iterator[RimSubmission]:
        """Every submission of patients ``first`` .. ``last - 1``, patients interleaved in a random order (each
        patient's own submissions in their order), as a registry receives them over the years."""
        rng = random.Random(f"{self.seed}/order/{first}/{last}")
        order = [p for p in range(first, last) for _ in self.plan(p)]
        rng.shuffle(order)
        plans = {p: self.plan(p) for p in range(first, last)}
        sent = dict.fromkeys(plans, 0)  # submissions of each patient sent so far
        for p in order:
            k = sent[p]
            sent[p] += 1
            start = sum(plans[p][:k])
            yield self.submission(p, k, range(start, start + plans[p][k]))

    def submission(self, p: int, k: int, docs: range) -> RimSubmission:
        rng = random.Random(f"{self.seed}/{p}/{k}")
        pid = patient_id(p)
        # Patient p's documents span 2012-2025 in order: document d at about d/per_patient of the way.
        day = 5 + int(docs.start / self.per_patient * 4500) + rng.randrange(20)
        when = _dtm(day, rng)
        author = Author(person=f"{_rpps(rng.randrange(2000))}^{rng.choice(_FAMILY)}^{rng.choice(_GIVEN)}"
                               "^^^^^^&1.2.250.1.71.4.2.1&ISO",
                        institutions=[f"CH {rng.randrange(300)}^^^^^&1.2.250.1.71.4.2.2&ISO^^^^"
                                      f"1750{rng.randrange(10**5):05d}"],
                        roles=["Médecin"], specialties=[f"G15_10/SM{rng.randrange(1, 60):02d}^^1.2.250.1.71.4.2.5"])
        ss_id = _named_uuid(f"ss/{self.seed}/{p}/{k}")
        ss = SubmissionSet(entry_uuid="ss", title=Text(rng.choice(_TITLES), "fr-FR"), patient_id=pid,
                           unique_id=f"{UID_ROOT}.{self.seed}.2.{p}.{k}", source_id="1.2.250.1.999.1.1.8121",
                           submission_time=when, authors=[author],
                           content_type_code=Code("04", "1.2.250.1.213.2.2", "Hospitalisation de jour"))
        objects = [_named(submission_set_to_rim(ss), ss_id, rng)]
        for d in docs:
            de = self._document(p, d, pid, author, day, rng)
            objects.append(_named(document_entry_to_rim(de), self.entry_uuid(p, d), rng))
            objects.append(association_to_rim(Association(
                entry_uuid=_named_uuid(f"as/{self.seed}/{p}/{d}"),
                association_type=AssociationType.HAS_MEMBER.value, source=ss_id, target=self.entry_uuid(p, d),
                submission_set_status="Original")))
        return RimSubmission(objects=objects)

    def _document(self, p: int, d: int, pid: str, author: Author, day: int, rng: random.Random) -> DocumentEntry:
        start = _dtm(day - 1 - rng.randrange(3), rng)
        events = [Code(c, "1.2.250.1.213.2.12", n) for c, n in rng.sample(_EVENTS, rng.choice((0, 0, 1, 2)))]
        confidentiality = [Code("N", "2.16.840.1.113883.5.25", "Normal")]
        if rng.random() < 0.05:
            confidentiality.append(Code("INVISIBLE_PATIENT", "1.2.250.1.213.1.1.4.13", "Non visible par le patient"))
        content = f"{self.seed}/{p}/{d}".encode()
        type_code, type_label, type_class = rng.choice(_TYPE)
        fmt, fmt_label = rng.choice(_FORMAT)
        return DocumentEntry(
            entry_uuid="de", mime_type=rng.choice(_MIME),
            title=Text(rng.choice(_TITLES), "fr-FR"), patient_id=pid, unique_id=self.unique_id(p, d),
            authors=[author], class_code=Code(type_class, "1.2.250.1.213.1.1.4.1", _CLASS_LABELS[type_class]),
            confidentiality_codes=confidentiality, event_codes=events,
            format_code=Code(fmt, _FORMAT_SCHEMES.get(fmt, "1.2.250.1.213.1.1.4.2.282"), fmt_label),
            healthcare_facility_type_code=Code(*_pick(rng, _HCFT, "1.2.250.1.71.4.2.4")),
            practice_setting_code=Code(*_pick(rng, _PRACTICE, "1.2.250.1.213.1.1.4.9")),
            type_code=Code(type_code, "2.16.840.1.113883.6.1", type_label),
            creation_time=_dtm(day, rng), language_code="fr-FR", service_start_time=start,
            service_stop_time=_dtm(day, rng),
            hash=hashlib.sha1(content, usedforsecurity=False).hexdigest(), size=2000 + rng.randrange(500_000),
            repository_unique_id=REPOSITORY_ID,
            source_patient_id=f"IPP{p:07d}^^^&1.2.250.1.999.1.1.8121.4&ISO",
            source_patient_info=[f"PID-5|{_FAMILY[p % 10]}^{_GIVEN[p // 10 % 10]}^^^^^L",
                                 f"PID-7|19{50 + p % 50:02d}{1 + p % 12:02d}01", f"PID-8|{'MF'[p % 2]}"],
        )


def _named(obj: RimObject, ident: str, rng: random.Random) -> RimObject:
    """Built with a symbolic id (the model writers would give nested objects name-based UUIDs, a SHA-1 each):
    now its urn:uuid id, and random UUIDs for what it nests."""
    obj.id = ident
    for cl in obj.classifications:
        cl.id, cl.classified_object = _uuid(rng), ident
    for e in obj.external_ids:
        e.id, e.registry_object = _uuid(rng), ident
    return obj


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"urn:uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _pick(rng: random.Random, codes: list[tuple[str, str]], scheme: str) -> tuple[str, str, str]:
    code, display = rng.choice(codes)
    return code, scheme, display


def _dtm(day: int, rng: random.Random) -> str:
    """Day ``day`` after 2012-01-01 (no calendar arithmetic needed: 28-day months), at a random minute."""
    y, rest = divmod(max(day, 1), 336)
    m, dd = divmod(rest, 28)
    return f"{2012 + y:04d}{m + 1:02d}{dd + 1:02d}{rng.randrange(7, 20):02d}{rng.randrange(60):02d}00"
