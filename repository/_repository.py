"""The Document Repository actor: ITI-41 Provide and Register Document Set-b and ITI-43 Retrieve
Document Set (ITI TF-2b §3.41, §3.43; docs/conformance.md §4, §5)."""

from __future__ import annotations

import base64
import binascii
import enum
import errno
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from registry import (
    DE_ON_DEMAND,
    IdScheme,
    Kind,
    Origin,
    Problem,
    Recorder,
    RegistryError,
    RegistryResponse,
    ResponseStatus,
    RimObject,
    RimSubmission,
    Slot,
    read_registry_object_list,
    registry_response,
)
from repository._blobstore import BlobInfo, BlobStore, BlobStoreUnavailable, PendingBlob
from repository._registry_port import RegistryPort
from soap_wsdl import Attachment, MtomMessage, OutgoingAttachment, ns

log = logging.getLogger(__name__)
_B64_CHUNK = 4 * 1024 * 1024


class _Busy(enum.Enum):
    BEING_STORED = "being stored"   # another submission holds the uniqueId's blob, not yet registered
Admit = Callable[[RimSubmission], tuple[Origin | None, Recorder | None]]
"""The consent checker's admission of an ITI-41 submission (see :meth:`Repository.provide_and_register`)."""


@dataclass
class RetrieveResult:
    body: etree._Element
    attachments: list[OutgoingAttachment] = field(default_factory=list)


class Repository:
    def __init__(self, blobs: BlobStore, registry: RegistryPort, repository_unique_id: str) -> None:
        self.blobs = blobs
        self.registry = registry
        self.repository_unique_id = repository_unique_id

    # --- ITI-41 -------------------------------------------------------------------------------------

    def provide_and_register(self, body: etree._Element, mime: MtomMessage | None, *,
                             admit: Admit | None = None) -> RegistryResponse:
        """Store every document, then register the metadata; all or nothing. ``admit(sub)`` (the consent
        checker) runs once the request is understood and before any document is stored: it raises to refuse,
        or returns who files the submission and what to record in the registration's transaction."""
        if body.tag != f"{{{ns.XDSB}}}ProvideAndRegisterDocumentSetRequest":
            return RegistryResponse.of([Problem.NOT_A_PROVIDE_AND_REGISTER(None,
                                                                           element=etree.QName(body).localname)])
        sor = body.find(f"{{{ns.LCM}}}SubmitObjectsRequest")
        if sor is None:
            return RegistryResponse.of([Problem.NO_SUBMIT_OBJECTS_REQUEST(None)])
        sub = read_registry_object_list(sor.find(f"{{{ns.RIM}}}RegistryObjectList"))
        temps: list[Path] = []
        try:
            documents, errors = self._documents(body, mime, temps)
            entries = [o for o in sub.objects if o.kind is Kind.EXTRINSIC_OBJECT]
            reported = {e.location for e in errors}
            errors += [e for e in self._match(entries, documents) if e.location not in reported]
            if any(e.severity.name == "ERROR" for e in errors):
                return RegistryResponse.of(errors)
            origin, record = admit(sub) if admit is not None else (None, None)
            return self._store_and_register(sub, entries, documents, origin, record)
        finally:
            for t in temps:
                t.unlink(missing_ok=True)

    def _documents(self, body: etree._Element, mime: MtomMessage | None, temps: list[Path]
                   ) -> tuple[dict[str, Attachment], list[RegistryError]]:
        documents: dict[str, Attachment] = {}
        errors: list[RegistryError] = []
        for el in body.iterfind(f"{{{ns.XDSB}}}Document"):
            doc_id = el.get("id", "")
            if not doc_id:
                errors.append(Problem.DOCUMENT_WITHOUT_ID(None))
                continue
            if doc_id in documents:
                errors.append(Problem.DOCUMENT_ID_TWICE(doc_id, document=doc_id))
                continue
            include = el.find(f"{{{ns.XOP}}}Include")
            if include is not None:
                href = include.get("href", "")
                att = mime.resolve(href) if mime is not None else None
                if att is None:
                    errors.append(Problem.DOCUMENT_PART_ABSENT(doc_id, document=doc_id, href=repr(href)))
                    continue
                documents[doc_id] = att
            else:
                att_or_error = self._inline(doc_id, el.text or "", temps)
                if isinstance(att_or_error, RegistryError):
                    errors.append(att_or_error)
                else:
                    documents[doc_id] = att_or_error
        return documents, errors

    def _inline(self, doc_id: str, text: str, temps: list[Path]) -> Attachment | RegistryError:
        """Inline base64 content (XOP allows it, NIST NoXop test): decoded to a spool file in chunks."""
        fd, name = tempfile.mkstemp(dir=self.blobs.spool)
        path = Path(name)
        temps.append(path)
        sha1, size = hashlib.sha1(), 0  # noqa: S324 - XDS specifies SHA-1
        compact = "".join(text.split())
        try:
            with os.fdopen(fd, "wb") as f:
                for i in range(0, len(compact), _B64_CHUNK):
                    data = base64.b64decode(compact[i : i + _B64_CHUNK], validate=True)
                    sha1.update(data)
                    size += len(data)
                    f.write(data)
        except (binascii.Error, ValueError):
            return Problem.DOCUMENT_NOT_BASE64(doc_id, document=doc_id)
        return Attachment(doc_id, "application/octet-stream", path, size, sha1.hexdigest(), None)

    def _match(self, entries: list[RimObject], documents: dict[str, Attachment]) -> list[RegistryError]:
        """Pair stable DocumentEntries with documents; check and fill hash, size, repositoryUniqueId."""
        errors: list[RegistryError] = []
        stable = {e.id: e for e in entries if e.object_type != DE_ON_DEMAND}
        for de_id in stable.keys() - documents.keys():
            errors.append(Problem.ENTRY_WITHOUT_DOCUMENT(de_id, entry=de_id))
        for doc_id in documents.keys() - stable.keys():
            errors.append(Problem.DOCUMENT_WITHOUT_ENTRY(doc_id, document=doc_id))
        seen: dict[str, str] = {}
        # One MIME part may be referenced by several xdsb:Documents (nothing in XOP forbids it): each gets
        # the part's content; an LF-framed part is re-read with its final LF once, for all of them.
        adopted: dict[Path, Attachment] = {}
        for de_id, de in stable.items():
            uid = de.external_id(IdScheme.DE_UNIQUE_ID.uuid) or ""
            if uid and uid in seen:
                errors.append(Problem.DOCUMENT_UNIQUE_ID_TWICE(de_id, unique_id=uid, first=seen[uid], second=de_id))
            seen[uid] = de_id
            att = documents.get(de_id)
            if att is None:
                continue
            att = self._check_hash_size(de, uid, adopted.get(att.path, att), errors)
            if att.lf_variant is None:
                adopted[att.path] = att
            documents[de_id] = att
            # The repository adds its repositoryUniqueId, or replaces a sender's (ITI TF-2b 3.41.4.1.3).
            _set_slot(de, "hash", att.sha1)
            _set_slot(de, "size", str(att.size))
            _set_slot(de, "repositoryUniqueId", self.repository_unique_id)
        return errors

    @staticmethod
    def _check_hash_size(de: RimObject, uid: str, att: Attachment, errors: list[RegistryError]) -> Attachment:
        sent_hash, sent_size = de.slot_value("hash"), de.slot_value("size")

        def mismatch(a: Attachment) -> bool:
            return bool((sent_hash and sent_hash.lower() != a.sha1) or (sent_size and sent_size != str(a.size)))

        if mismatch(att) and att.lf_variant is not None:
            # LF-framed MIME (DRIMbox) counts the LF before the delimiter as content (docs/conformance.md §2 rule 2).
            sha1, size = att.lf_variant
            if not ((sent_hash and sent_hash.lower() != sha1) or (sent_size and sent_size != str(size))):
                log.info("document %s: declared hash matches the LF-framed variant; keeping the final LF", uid)
                return att.adopt_lf_variant()
        # A declared hash or size that the document contradicts is a metadata error of the submission
        # (ITI TF-2b 3.41.4.1.3); XDSNonIdenticalHash/Size are for a uniqueId registered with another document.
        if sent_hash and sent_hash.lower() != att.sha1:
            errors.append(Problem.DECLARED_HASH_MISMATCH(de.id, entry=de.id, unique_id=uid, declared=sent_hash,
                                                         actual=att.sha1))
        if sent_size and sent_size != str(att.size):
            errors.append(Problem.DECLARED_SIZE_MISMATCH(de.id, entry=de.id, unique_id=uid, declared=sent_size,
                                                         actual=att.size))
        return att

    def _add(self, uid: str, att: Attachment, mime_type: str | None) -> PendingBlob | _Busy | None:
        """The blob of one document: its :class:`PendingBlob` (this submission stores it), None (a blob is stored
        under ``uid`` for a registered document: the registry compares it with this one), or ``BEING_STORED``.

        A blob another submission has added and not yet registered is not this submission's to rely on: that
        submission removes it if its registration fails, and this one's document, registered meanwhile, would
        have no blob (or the other's bytes). Such a document is refused (XDSRepositoryBusy, the client may retry);
        a blob whose submission gave up between the two steps is added again."""
        for _ in range(2):
            pending = self.blobs.add(uid, att.path, mime_type=mime_type or "application/octet-stream",
                                     size=att.size, sha1=att.sha1)
            if pending is not None or self.blobs.get(uid) is not None:
                return pending
        return _Busy.BEING_STORED

    def _store_and_register(self, sub: RimSubmission, entries: list[RimObject], documents: dict[str, Attachment],
                            origin: Origin | None, record: Recorder | None) -> RegistryResponse:
        added: list[PendingBlob] = []
        try:
            for de in entries:
                att = documents.get(de.id)
                if att is None:
                    continue
                uid = de.external_id(IdScheme.DE_UNIQUE_ID.uuid) or ""
                pending = self._add(uid, att, de.mime_type)
                if pending is _Busy.BEING_STORED:
                    self.blobs.remove(added)
                    return RegistryResponse.of([Problem.UNIQUE_ID_BEING_STORED(de.id, unique_id=uid)])
                if pending is not None:
                    added.append(pending)
        except OSError as exc:
            self.blobs.remove(added)
            log.error("could not store documents: %s", exc)
            out_of_space = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            problem = Problem.REPOSITORY_OUT_OF_SPACE if out_of_space else Problem.REPOSITORY_STORAGE_FAILED
            return RegistryResponse.of([problem("repository.store")])
        try:
            response = self.registry.register_submission(sub, origin=origin, record=record)
        except BaseException:
            self.blobs.remove(added)
            raise
        if response.status is ResponseStatus.FAILURE:
            self.blobs.remove(added)
        else:
            self.blobs.commit(added)
        return response

    # --- ITI-43 -------------------------------------------------------------------------------------

    def retrieve(self, body: etree._Element, *, readable: Callable[[list[str]], set[str]] | None = None
                 ) -> RetrieveResult:
        """ITI-43. ``readable(unique_ids)`` (the consent checker) says which of the asked documents the caller
        may read; the others are answered exactly as documents this repository does not hold."""
        if body.tag != f"{{{ns.XDSB}}}RetrieveDocumentSetRequest":
            return self._retrieve_result([], [Problem.NOT_A_RETRIEVE(None, element=etree.QName(body).localname)])
        requests = body.findall(f"{{{ns.XDSB}}}DocumentRequest")
        if not requests:
            return self._retrieve_result([], [Problem.RETRIEVE_WITHOUT_REQUEST(None)])
        found: list[tuple[etree._Element, OutgoingAttachment]] = []
        errors: list[RegistryError] = []
        allowed = readable([_text(r, "DocumentUniqueId") for r in requests]) if readable is not None else None
        for n, req in enumerate(requests, 1):
            home = _text(req, "HomeCommunityId")
            repo = _text(req, "RepositoryUniqueId")
            uid = _text(req, "DocumentUniqueId")
            if not uid:
                errors.append(Problem.RETRIEVE_WITHOUT_UNIQUE_ID(f"DocumentRequest[{n}]", number=n))
                continue
            if repo != self.repository_unique_id:
                errors.append(Problem.RETRIEVE_OTHER_REPOSITORY(repo or f"DocumentRequest[{n}]", repository=repo,
                                                                ours=self.repository_unique_id))
                continue
            try:
                blob: BlobInfo | None = self.blobs.get(uid) if allowed is None or uid in allowed else None
            except BlobStoreUnavailable as exc:
                log.error("could not read a document from the blob store: %s", exc)
                errors.append(Problem.RETRIEVE_STORE_UNAVAILABLE(uid, unique_id=uid))
                continue
            if blob is None:
                errors.append(Problem.RETRIEVE_UNKNOWN_DOCUMENT(uid, unique_id=uid))
                continue
            cid = f"doc{n}.{uuid.uuid4().hex}@dmp-xds"
            found.append((_document_response(home, repo, uid, blob.mime_type, cid),
                          OutgoingAttachment(cid, blob.mime_type, blob.content)))
        return self._retrieve_result(found, errors)

    @staticmethod
    def _retrieve_result(found: list[tuple[etree._Element, OutgoingAttachment]], errors: list[RegistryError]
                         ) -> RetrieveResult:
        if not errors:
            status = ResponseStatus.SUCCESS
        elif found:
            status = ResponseStatus.PARTIAL_SUCCESS
        else:
            status = ResponseStatus.FAILURE
        root = etree.Element(f"{{{ns.XDSB}}}RetrieveDocumentSetResponse", nsmap={"xdsb": ns.XDSB, "rs": ns.RS})
        root.append(registry_response(RegistryResponse(status, tuple(errors))))
        for el, _ in found:
            root.append(el)
        return RetrieveResult(root, [a for _, a in found])


def _text(el: etree._Element, local: str) -> str:
    child = el.find(f"{{{ns.XDSB}}}{local}")
    return (child.text or "").strip() if child is not None else ""


def _document_response(home: str, repo: str, uid: str, mime_type: str, cid: str) -> etree._Element:
    x = ns.XDSB
    dr = etree.Element(f"{{{x}}}DocumentResponse")
    if home:
        etree.SubElement(dr, f"{{{x}}}HomeCommunityId").text = home
    etree.SubElement(dr, f"{{{x}}}RepositoryUniqueId").text = repo
    etree.SubElement(dr, f"{{{x}}}DocumentUniqueId").text = uid
    etree.SubElement(dr, f"{{{x}}}mimeType").text = mime_type
    doc = etree.SubElement(dr, f"{{{x}}}Document")
    etree.SubElement(doc, f"{{{ns.XOP}}}Include", nsmap={"xop": ns.XOP}).set("href", f"cid:{cid}")
    return dr


def _set_slot(obj: RimObject, name: str, value: str) -> None:
    slot = obj.slot(name)
    if slot is None:
        obj.slots.append(Slot(name, [value]))
    else:
        slot.values = [value]
