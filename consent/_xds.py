"""What each XDS transaction asks of the consent checker (docs/consent.md: "Decision order", "One patient per request").

The VIHF's resource-id names the one patient of a request: the submission's patient (ITI-41/42), the query's
patient parameters and every object a query finds by id (ITI-18), the patient of each document asked
(ITI-43) and of each object changed (ITI-57). Any other patient is refused with nothing returned or stored,
and the refusal is traced in the history of the VIHF's patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from consent._guard import AccessRefused, Guard, Trace, database, unknown_patient
from consent._model import Action, Dossier, Reason
from consent._rules import decide, status_action, version_actions
from pki import Principal
from registry import (
    REPLACEMENTS,
    DocumentFacts,
    DocumentFilter,
    Kind,
    Origin,
    Registry,
    RimSubmission,
    content_changed,
    describe_update,
    patient_key,
    submission_patient,
    submitted_documents,
)


def vihf_patient(principal: Principal) -> str:
    """The patient key of the VIHF's resource-id; a request about a patient needs one."""
    if principal.patient is None:
        raise AccessRefused(Reason.PATIENT_MISMATCH, "the VIHF names no patient (resource-id) for a request about "
                            "a patient's DMP")
    return patient_key(principal.patient.cx)


def origin_of(principal: Principal) -> Origin:
    return Origin(principal.professional_id, principal.structure_id)


@dataclass
class Admission:
    """An admitted submission: who files it, and the trace to record in its registration's transaction."""

    origin: Origin
    trace: Trace


class XdsConsent:
    """The consent checker applied to the XDS transactions of one node."""

    def __init__(self, guard: Guard, registry: Registry) -> None:
        self.guard = guard
        self.registry = registry

    def _facts(self, *, unique_ids: Sequence[str] = (), ids: Sequence[str] = ()) -> list[DocumentFacts]:
        with database():
            return self.registry.document_facts(unique_ids=unique_ids, ids=ids)

    def _dossier(self, principal: Principal) -> tuple[str, Dossier]:
        key = vihf_patient(principal)
        dossier = self.guard.dossier(key, principal)
        if dossier is None:
            raise unknown_patient(key)
        return key, dossier

    # --- ITI-41 / ITI-42 ------------------------------------------------------------------------------

    def admit_submission(self, principal: Principal, sub: RimSubmission, transaction: str) -> Admission:
        key, dossier = self._dossier(principal)
        if (submission_patient(sub) or key) != key:
            self.guard.refuse_mismatch(principal, Action.FEED, key, transaction=transaction)
        origin = origin_of(principal)
        trace = self.guard.admit(principal, Action.FEED, key, submitted_documents(sub, key, origin),
                                 transaction=transaction, dossier=dossier)
        replaced = [o.target for o in sub.objects if o.kind is Kind.ASSOCIATION and o.target
                    and o.association_type in {t.value for t in REPLACEMENTS}]
        if replaced:
            # Replacing is amending the replaced document (own documents, or the médecin traitant's). A target of
            # another patient is the registry's XDSPatientIdDoesNotMatch (ITI TF-3 §4.1.6.1), which refuses the
            # whole submission: only this patient's targets are decided here.
            targets = [f for f in self._facts(ids=replaced) if f.patient_key == key]
            self.guard.admit(principal, Action.REPLACE, key, targets, transaction=transaction, dossier=dossier)
        return Admission(origin, trace)

    # --- ITI-57 ---------------------------------------------------------------------------------------

    def admit_update(self, principal: Principal, sub: RimSubmission, transaction: str) -> Admission:
        key, dossier = self._dossier(principal)
        if (submission_patient(sub) or key) != key:
            self.guard.refuse_mismatch(principal, Action.REPLACE, key, transaction=transaction)
        changes, versions = describe_update(sub)
        targets = [c.target for c in changes] + [v.lid for v in versions]
        facts = {f.entry_id: f for f in self._facts(ids=targets)}
        by_lid = {f.lid: f for f in facts.values()}
        if any(f.patient_key != key for f in facts.values()):
            self.guard.refuse_mismatch(principal, Action.REPLACE, key, transaction=transaction)
        planned: list[tuple[Action, DocumentFacts | None]] = []
        for change in changes:
            target = facts.get(change.target) or next((f for f in facts.values() if f.lid == change.target), None)
            planned.append((status_action(change.original, change.new), target))
        with database():
            stored = self.registry.latest_entries([v.lid for v in versions]) if versions else {}
        for version in versions:
            previous = by_lid.get(version.lid)
            if previous is not None:
                changed = version.lid in stored and content_changed(stored[version.lid], version.entry)
                planned += [(a, previous) for a in version_actions(previous, version.confidentiality,
                                                                   content_changed=changed)]
        if not planned:
            planned.append((Action.REPLACE, None))
        trace: Trace | None = None
        for action, doc in planned:
            admitted = self.guard.admit(principal, action, key, [doc] if doc else [], transaction=transaction,
                                        dossier=dossier)
            if trace is None:
                trace = admitted
            else:
                trace.documents += admitted.documents
                trace.decision = trace.decision.joined(admitted.decision)
        assert trace is not None
        trace.action = planned[0][0]
        return Admission(origin_of(principal), trace)

    # --- ITI-18 ---------------------------------------------------------------------------------------

    def admit_query(self, principal: Principal, references_only: bool, transaction: str
                    ) -> tuple[str, DocumentFilter, Trace]:
        """The patient the query must stay within, what the caller may see, and the trace to record."""
        action = Action.SEARCH_REFERENCES if references_only else Action.SEARCH
        key, dossier = self._dossier(principal)
        trace = self.guard.admit(principal, action, key, transaction=transaction, dossier=dossier)
        return key, self.guard.visibility(principal, dossier), trace

    def refuse_query(self, principal: Principal, references_only: bool, transaction: str) -> NoReturn:
        action = Action.SEARCH_REFERENCES if references_only else Action.SEARCH
        self.guard.refuse_mismatch(principal, action, vihf_patient(principal), transaction=transaction)

    # --- ITI-43 ---------------------------------------------------------------------------------------

    def admit_retrieval(self, principal: Principal, unique_ids: Sequence[str], transaction: str
                        ) -> tuple[set[str], Trace]:
        """The uniqueIds the caller may read among those asked (a hidden document is answered as unknown), and
        the trace to record before the documents leave."""
        key, dossier = self._dossier(principal)
        facts = self._facts(unique_ids=unique_ids)
        if any(f.patient_key != key for f in facts):
            self.guard.refuse_mismatch(principal, Action.READ, key, transaction=transaction)
        trace = self.guard.admit(principal, Action.READ, key, transaction=transaction, dossier=dossier)
        readable = [f for f in facts if decide(principal, Action.READ, dossier, f).allowed]
        trace.documents = readable
        return {f.unique_id for f in readable if f.unique_id}, trace
