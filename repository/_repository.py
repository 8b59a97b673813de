"""The Document Repository actor: ITI-41 Provide and Register Document Set-b and ITI-43 Retrieve
Document Set (ITI TF-2b §3.41, §3.43; XDS.md §7.1, §7.3)."""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from registry import (
    DE_ON_DEMAND,
    ErrorCode,
    IdScheme,
    Kind,
    RegistryError,
    RegistryResponse,
    ResponseStatus,
    RimObject,
    Slot,
    read_registry_object_list,
    registry_response,
)
from repository._blobstore import FilesystemBlobStore, PendingBlob
from repository._registry_port import RegistryPort
from soap_wsdl import Attachment, MtomMessage, OutgoingAttachment, ns

log = logging.getLogger(__name__)
_B64_CHUNK = 4 * 1024 * 1024


def _error(code: ErrorCode, context: str, location: str | None) -> RegistryError:
    return RegistryError(code, context, location)


@dataclass
class RetrieveResult:
    body: etree._Element
    attachments: list[OutgoingAttachment] = field(default_factory=list)


class Repository:
    def __init__(self, blobs: FilesystemBlobStore, registry: RegistryPort, repository_unique_id: str) -> None:
        self.blobs = blobs
        self.registry = registry
        self.repository_unique_id = repository_unique_id

    # --- ITI-41 -------------------------------------------------------------------------------------

    def provide_and_register(self, body: etree._Element, mime: MtomMessage | None) -> RegistryResponse:
        """Store every document, then register the metadata; all or nothing."""
        if body.tag != f"{{{ns.XDSB}}}ProvideAndRegisterDocumentSetRequest":
            return RegistryResponse.of([_error(ErrorCode.REPOSITORY_METADATA_ERROR,
                f"expected xdsb:ProvideAndRegisterDocumentSetRequest, received {etree.QName(body).localname}",
                None)])
        sor = body.find(f"{{{ns.LCM}}}SubmitObjectsRequest")
        if sor is None:
            return RegistryResponse.of([_error(ErrorCode.REPOSITORY_METADATA_ERROR,
                "ProvideAndRegisterDocumentSetRequest has no lcm:SubmitObjectsRequest", None)])
        sub = read_registry_object_list(sor.find(f"{{{ns.RIM}}}RegistryObjectList"))
        temps: list[Path] = []
        try:
            documents, errors = self._documents(body, mime, temps)
            entries = [o for o in sub.objects if o.kind is Kind.EXTRINSIC_OBJECT]
            reported = {e.location for e in errors}
            errors += [e for e in self._match(entries, documents) if e.location not in reported]
            if any(e.severity.name == "ERROR" for e in errors):
                return RegistryResponse.of(errors)
            return self._store_and_register(sub, entries, documents)
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
                errors.append(_error(ErrorCode.REPOSITORY_METADATA_ERROR, "xdsb:Document without id attribute",
                                     None))
                continue
            if doc_id in documents:
                errors.append(_error(ErrorCode.REPOSITORY_METADATA_ERROR,
                                     f"two xdsb:Document elements have id '{doc_id}'", doc_id))
                continue
            include = el.find(f"{{{ns.XOP}}}Include")
            if include is not None:
                href = include.get("href", "")
                att = mime.resolve(href) if mime is not None else None
                if att is None:
                    errors.append(_error(ErrorCode.MISSING_DOCUMENT,
                                         f"xdsb:Document '{doc_id}' refers to {href!r}, which is not a part of "
                                         "the MIME package", doc_id))
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
            return _error(ErrorCode.REPOSITORY_METADATA_ERROR,
                          f"xdsb:Document '{doc_id}' is neither an xop:Include nor valid base64", doc_id)
        return Attachment(doc_id, "application/octet-stream", path, size, sha1.hexdigest(), None)

    def _match(self, entries: list[RimObject], documents: dict[str, Attachment]) -> list[RegistryError]:
        """Pair stable DocumentEntries with documents; check and fill hash, size, repositoryUniqueId."""
        errors: list[RegistryError] = []
        stable = {e.id: e for e in entries if e.object_type != DE_ON_DEMAND}
        for de_id in stable.keys() - documents.keys():
            errors.append(_error(ErrorCode.MISSING_DOCUMENT,
                                 f"DocumentEntry '{de_id}' has no xdsb:Document with that id", de_id))
        for doc_id in documents.keys() - stable.keys():
            errors.append(_error(ErrorCode.MISSING_DOCUMENT_METADATA,
                                 f"xdsb:Document '{doc_id}' has no DocumentEntry (ExtrinsicObject) with that id",
                                 doc_id))
        seen: dict[str, str] = {}
        # One MIME part may be referenced by several xdsb:Documents (nothing in XOP forbids it): each gets
        # the part's content; an LF-framed part is re-read with its final LF once, for all of them.
        adopted: dict[Path, Attachment] = {}
        for de_id, de in stable.items():
            uid = de.external_id(IdScheme.DE_UNIQUE_ID.uuid) or ""
            if uid and uid in seen:
                errors.append(_error(ErrorCode.REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                                     f"uniqueId '{uid}' is used by both {seen[uid]} and {de_id}", de_id))
            seen[uid] = de_id
            att = documents.get(de_id)
            if att is None:
                continue
            att = self._check_hash_size(de, uid, adopted.get(att.path, att), errors)
            if att.lf_variant is None:
                adopted[att.path] = att
            documents[de_id] = att
            repo = de.slot_value("repositoryUniqueId")
            if repo is not None and repo != self.repository_unique_id:
                errors.append(_error(ErrorCode.REPOSITORY_METADATA_ERROR,
                                     f"repositoryUniqueId '{repo}' is not this repository "
                                     f"({self.repository_unique_id})", de_id))
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
            # LF-framed MIME (DRIMbox) counts the LF before the delimiter as content (XDS.md trap 7).
            sha1, size = att.lf_variant
            if not ((sent_hash and sent_hash.lower() != sha1) or (sent_size and sent_size != str(size))):
                log.info("document %s: declared hash matches the LF-framed variant; keeping the final LF", uid)
                return att.adopt_lf_variant()
        if sent_hash and sent_hash.lower() != att.sha1:
            errors.append(_error(ErrorCode.NON_IDENTICAL_HASH,
                                 f"{de.id} ({uid}): declared hash {sent_hash} does not match the document's "
                                 f"SHA-1 {att.sha1}", de.id))
        if sent_size and sent_size != str(att.size):
            errors.append(_error(ErrorCode.NON_IDENTICAL_SIZE,
                                 f"{de.id} ({uid}): declared size {sent_size} does not match the document's "
                                 f"size {att.size}", de.id))
        return att

    def _store_and_register(self, sub: object, entries: list[RimObject], documents: dict[str, Attachment]
                            ) -> RegistryResponse:
        added: list[PendingBlob] = []
        try:
            for de in entries:
                att = documents.get(de.id)
                if att is None:
                    continue
                uid = de.external_id(IdScheme.DE_UNIQUE_ID.uuid) or ""
                pending = self.blobs.add(uid, att.path, mime_type=de.mime_type or "application/octet-stream",
                                         size=att.size, sha1=att.sha1)
                if pending is not None:
                    added.append(pending)
        except OSError as exc:
            self.blobs.remove(added)
            log.error("could not store documents: %s", exc)
            out_of_space = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            return RegistryResponse.of([_error(
                ErrorCode.REPOSITORY_OUT_OF_RESOURCES if out_of_space else ErrorCode.REPOSITORY_ERROR,
                "the repository has no space left to store the documents; nothing was registered" if out_of_space
                else "the repository could not store the documents; nothing was registered", "repository.store")])
        try:
            response = self.registry.register_submission(sub)  # type: ignore[arg-type]
        except BaseException:
            self.blobs.remove(added)
            raise
        if response.status is ResponseStatus.FAILURE:
            self.blobs.remove(added)
        else:
            self.blobs.commit(added)
        return response

    # --- ITI-43 -------------------------------------------------------------------------------------

    def retrieve(self, body: etree._Element) -> RetrieveResult:
        if body.tag != f"{{{ns.XDSB}}}RetrieveDocumentSetRequest":
            return self._retrieve_result([], [_error(ErrorCode.REPOSITORY_ERROR,
                f"expected xdsb:RetrieveDocumentSetRequest, received {etree.QName(body).localname}", None)])
        requests = body.findall(f"{{{ns.XDSB}}}DocumentRequest")
        if not requests:
            return self._retrieve_result([], [_error(ErrorCode.REPOSITORY_ERROR,
                "RetrieveDocumentSetRequest holds no DocumentRequest", None)])
        found: list[tuple[etree._Element, OutgoingAttachment]] = []
        errors: list[RegistryError] = []
        for n, req in enumerate(requests, 1):
            home = _text(req, "HomeCommunityId")
            repo = _text(req, "RepositoryUniqueId")
            uid = _text(req, "DocumentUniqueId")
            if not uid:
                errors.append(_error(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR,
                                     f"DocumentRequest {n} has no DocumentUniqueId", f"DocumentRequest[{n}]"))
                continue
            if repo != self.repository_unique_id:
                errors.append(_error(ErrorCode.UNKNOWN_REPOSITORY_ID,
                                     f"repositoryUniqueId '{repo}' is not this repository's "
                                     f"({self.repository_unique_id})", repo or f"DocumentRequest[{n}]"))
                continue
            blob = self.blobs.get(uid)
            if blob is None:
                errors.append(_error(ErrorCode.DOCUMENT_UNIQUE_ID_ERROR,
                                     f"document '{uid}' is not in this repository", uid))
                continue
            cid = f"doc{n}.{uuid.uuid4().hex}@dmp-xds"
            found.append((_document_response(home, repo, uid, blob.mime_type, cid),
                          OutgoingAttachment(cid, blob.mime_type, blob.path)))
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
