"""The patient's access history (docs/consent.md, R14): every decision, allowed or refused, appended in the
transaction of what it records, each entry chained to the previous one of the same patient by SHA-256.

``hash = SHA-256(prev_hash | patient | seq | at | entry)`` where ``entry`` is the entry's canonical JSON; the
dossier keeps the head (last seq and hash). :func:`verify` recomputes every chain: an edited entry breaks its
hash, a deleted or inserted one the sequence and the next entry's link, a deleted newest entry the head.
This detects changes made by someone who cannot also recompute the chain; it is not a signature.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, Final

from sqlalchemy import Column, Connection, bindparam, insert, select, update
from sqlalchemy import text as sql_text

from consent._schema import access_history, dossier
from registry import DirectStatement

GENESIS: Final = "0" * 64
h, d = access_history.c, dossier.c


@dataclass(frozen=True)
class HistoryEntry:
    """One access. Identities belong here (and never in the logs)."""

    action: str                    # consent Action value
    transaction: str               # e.g. "ITI-18 FindDocuments", "ITI-43", "TD0.3", "dmp patient block"
    allowed: bool
    reason: str                    # consent Reason code
    actor_id: str                  # IdNat_PS / NameID, or "patient", "operator"
    actor_name: str
    actor_kind: str                # consent Kind value, or "treating-doctor"
    profession: str | None = None
    structure: str | None = None
    auth_mode: str | None = None
    purpose: str | None = None
    emergency: bool = False
    documents: tuple[str, ...] = ()   # uniqueIds (or entryUUIDs) concerned
    detail: str | None = None         # e.g. the professional an administration action names

    def to_json(self) -> str:
        # The fields by name (dataclasses.asdict deep-copies every value: ~15 calls per entry, every request).
        data = {name: getattr(self, name) for name in _FIELDS}
        data["documents"] = list(self.documents)
        return _CANONICAL_JSON.encode(data)

    @classmethod
    def from_json(cls, text: str) -> HistoryEntry:
        data: dict[str, Any] = json.loads(text)
        data["documents"] = tuple(data.get("documents", ()))
        return cls(**data)


_FIELDS: Final = tuple(f.name for f in fields(HistoryEntry))
_CANONICAL_JSON: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
"""The entry's canonical JSON, the text its hash covers (one encoder: ``json.dumps`` with options makes one per
call)."""


def link(prev_hash: str, patient_key: str, seq: int, at: str, entry_json: str) -> str:
    material = "\x1f".join((prev_hash, patient_key, str(seq), at, entry_json)).encode()
    return hashlib.sha256(material).hexdigest()


def append(conn: Connection, patient_key: str, entry: HistoryEntry, at: str,
           also: tuple[Column[Any], ...] = ()) -> Any:
    """Append ``entry`` to the patient's history in the caller's transaction. Returns the dossier's row as read
    for it (its head before the entry: ``history_seq``, ``history_head``, and the columns ``also`` names: one
    statement for what the caller needs next of the same row, e.g. the notices' recipients), None when the
    patient has no dossier (nothing appended). The dossier row is locked for the update on PostgreSQL, so
    concurrent appends to one history are serialised (SQLite writers already are).

    On PostgreSQL the whole append is one statement (:func:`_append_in_one`: one round trip instead of three
    while the row is locked, issue 13), the link computed by the server with the same bytes as :func:`link`;
    on SQLite (in-process: no round trips) the head is read, the link computed here, the entry inserted and the
    head moved."""
    text = entry.to_json()
    if conn.dialect.name == "postgresql":
        return _append_in_one(also).first(conn, {"key": patient_key, "at": at, "entry": text})
    head = _head(also).first(conn, {"key": patient_key})
    if head is None:
        return None
    seq = int(head.history_seq) + 1
    digest = link(head.history_head, patient_key, seq, at, text)
    _INSERT.run(conn, {"patient_key": patient_key, "seq": seq, "at": at, "entry": text,
                           "prev_hash": head.history_head, "hash": digest})
    _MOVE_HEAD.run(conn, {"key": patient_key, "history_seq": seq, "history_head": digest})
    return head


# Built once and executed directly (every access runs them: ``registry.DirectStatement``).
@functools.cache
def _head(also: tuple[Column[Any], ...]) -> DirectStatement:
    return DirectStatement(
        select(d.history_seq, d.history_head, *also).where(d.patient_key == bindparam("key")).with_for_update())


_INSERT = DirectStatement(insert(access_history))
_MOVE_HEAD = DirectStatement(update(dossier).where(d.patient_key == bindparam("key")))


@functools.cache
def _append_in_one(also: tuple[Column[Any], ...]) -> DirectStatement:
    """PostgreSQL: lock and read the head (``head``), link the entry to it (``chained``: :func:`link`'s
    material, fields joined by U+001F, as UTF-8, SHA-256 in hex: ``sha256`` is PostgreSQL's own since 11),
    move the head and insert the entry, and return the head as read. ``FOR UPDATE`` in READ COMMITTED waits
    for a concurrent append and then reads the head it committed; the UPDATE of the same row, in the same
    statement, updates that newest version (locked by this transaction), so no append is lost or forked
    (tests/consent/test_history_append.py appends from many connections at once and verifies the chain). All
    the parameters are text (one type per parameter wherever it is used)."""
    extra = "".join(f", {c.name}" for c in also)   # the schema's column names, never input
    key = "CAST(:key AS TEXT)"
    return DirectStatement(sql_text(
        f"WITH head AS (SELECT history_seq, history_head{extra} FROM dossier WHERE patient_key = {key} "  # noqa: S608
        "FOR UPDATE), "
        "chained AS (SELECT history_seq + 1 AS seq, history_head AS prev_hash, "
        f"encode(sha256(convert_to(concat_ws(chr(31), history_head, {key}, (history_seq + 1)::text, "
        "CAST(:at AS TEXT), CAST(:entry AS TEXT)), 'UTF8')), 'hex') AS hash FROM head), "
        "moved AS (UPDATE dossier SET history_seq = chained.seq, history_head = chained.hash FROM chained "
        f"WHERE dossier.patient_key = {key}), "
        "added AS (INSERT INTO access_history (patient_key, seq, at, entry, prev_hash, hash) "
        f"SELECT {key}, seq, CAST(:at AS TEXT), CAST(:entry AS TEXT), prev_hash, hash FROM chained) "
        f"SELECT history_seq, history_head{extra} FROM head").columns(d.history_seq, d.history_head, *also),
        prepared=True)   # its plan does not depend on the values: kept (registry.prepared_statement)


@dataclass(frozen=True)
class Recorded:
    seq: int
    at: str
    entry: HistoryEntry
    hash: str


def entries(conn: Connection, patient_key: str, *, newest_first: bool = True, limit: int | None = None
            ) -> list[Recorded]:
    stmt = select(h.seq, h.at, h.entry, h.hash).where(h.patient_key == patient_key)
    stmt = stmt.order_by(h.seq.desc() if newest_first else h.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Recorded(int(r.seq), r.at, HistoryEntry.from_json(r.entry), r.hash) for r in conn.execute(stmt)]


@dataclass(frozen=True)
class Problem:
    """A place where a history does not verify: the patient, the entry (row id and seq) and what is wrong."""

    patient_key: str
    row_id: int | None
    seq: int | None
    what: str

    def __str__(self) -> str:
        where = f"entry seq {self.seq} (row {self.row_id})" if self.row_id is not None else "history head"
        return f"{self.patient_key}: {where}: {self.what}"


def verify(conn: Connection) -> list[Problem]:
    """Every history against its chain and its dossier's head; [] when all verify."""
    problems: list[Problem] = []
    heads = {r.patient_key: (int(r.history_seq), r.history_head)
             for r in conn.execute(select(d.patient_key, d.history_seq, d.history_head))}
    current: str | None = None
    expected_seq, prev = 1, GENESIS
    for r in _all_rows(conn):
        if r.patient_key != current:
            if current is not None:
                problems += _check_head(current, expected_seq - 1, prev, heads)
            current, expected_seq, prev = r.patient_key, 1, GENESIS
            if current not in heads:
                problems.append(Problem(current, r.id, int(r.seq), "entry of a patient without a dossier"))
        seq = int(r.seq)
        if seq != expected_seq:
            what = "entries missing before it (deleted)" if seq > expected_seq else "out of sequence (inserted)"
            problems.append(Problem(r.patient_key, r.id, seq, f"expected seq {expected_seq}: {what}"))
        if r.prev_hash != prev:
            problems.append(Problem(r.patient_key, r.id, seq, "does not link to the previous entry "
                                    "(an entry before it was deleted, inserted or edited)"))
        if link(r.prev_hash, r.patient_key, seq, r.at, r.entry) != r.hash:
            problems.append(Problem(r.patient_key, r.id, seq, "content does not match its hash (edited)"))
        expected_seq, prev = seq + 1, r.hash
    if current is not None:
        problems += _check_head(current, expected_seq - 1, prev, heads)
    seen = {p.patient_key for p in problems} | _patients_with_entries(conn)
    for key, (seq, head) in heads.items():
        if key not in seen and (seq != 0 or head != GENESIS):
            problems.append(Problem(key, None, None, f"the head names entry {seq} but the history is empty "
                                    "(entries deleted)"))
    return problems


def _check_head(patient_key: str, last_seq: int, last_hash: str, heads: dict[str, tuple[int, str]]
                ) -> list[Problem]:
    head = heads.get(patient_key)
    if head is None or head == (last_seq, last_hash):
        return []
    return [Problem(patient_key, None, None, f"the head names entry {head[0]}, the history ends at entry {last_seq} "
                    "(newest entries deleted, or entries appended outside the node)")]


def _all_rows(conn: Connection) -> Iterator[Any]:
    yield from conn.execute(select(h.id, h.patient_key, h.seq, h.at, h.entry, h.prev_hash, h.hash)
                            .order_by(h.patient_key, h.seq, h.id))


def _patients_with_entries(conn: Connection) -> set[str]:
    return set(conn.execute(select(h.patient_key).distinct()).scalars())
