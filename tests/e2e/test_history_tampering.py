"""The access history end to end: every access is in it, in order, and `dmp history verify` names each entry
edited, deleted or inserted behind the node's back (a node of its own: the test leaves its history broken)."""

from __future__ import annotations

from consent_client import CAROL, cli, doc, feed, find, history, new_patient, refused, retrieve, unique_ids
from sqlalchemy import text
from vihf_client import ALICE

from registry import Store


def test_every_access_is_in_the_history_and_tampering_is_detected(node):
    p = new_patient(node)
    d = doc(b"traced", p)
    assert feed(node, ALICE, p, d).status == "Success"
    unique_ids(find(node, ALICE, p))
    assert retrieve(node, ALICE, p, d.unique_id).documents() == {d.unique_id: d.content}
    refused(find(node, CAROL, p), "not-authorized")
    entries = history(node, p)
    assert [(e["transaction"], e["action"], e["allowed"]) for e in entries[:4]] == [
        ("ITI-18", "search", False), ("ITI-43", "read", True), ("ITI-18", "search", True),
        ("ITI-41", "feed", True)]
    assert entries[1]["documents"] == [d.unique_id]
    assert entries[-1]["action"] == "create"
    assert "every access history verifies" in cli(node, "history", "verify")

    store = Store(node.config.database_url)
    try:
        with store.write() as conn:
            row = conn.execute(text("SELECT id, entry FROM access_history WHERE patient_key = :p AND seq = 3"),
                               {"p": p}).one()
            conn.execute(text("UPDATE access_history SET entry = :e WHERE id = :i"),
                         {"e": row.entry.replace('"allowed":true', '"allowed":false'), "i": row.id})
        out = cli(node, "history", "verify", code=1)
        assert f"{p}: entry seq 3 (row {row.id}): content does not match its hash (edited)" in out
        with store.write() as conn:
            conn.execute(text("UPDATE access_history SET entry = :e WHERE id = :i"), {"e": row.entry, "i": row.id})
        cli(node, "history", "verify")

        with store.write() as conn:        # a deleted entry
            saved = conn.execute(text("SELECT * FROM access_history WHERE patient_key = :p AND seq = 2"),
                                 {"p": p}).one()._asdict()
            conn.execute(text("DELETE FROM access_history WHERE id = :i"), {"i": saved["id"]})
        out = cli(node, "history", "verify", code=1)
        assert f"{p}: entry seq 3" in out
        assert "expected seq 2: entries missing before it (deleted)" in out
        with store.write() as conn:
            conn.execute(text("INSERT INTO access_history (id, patient_key, seq, at, entry, prev_hash, hash) "
                              "VALUES (:id, :patient_key, :seq, :at, :entry, :prev_hash, :hash)"), saved)
        cli(node, "history", "verify")

        with store.write() as conn:        # an inserted entry, renumbering those after it
            conn.execute(text("UPDATE access_history SET seq = seq + 1000 WHERE patient_key = :p AND seq >= 2"),
                         {"p": p})
            conn.execute(text("UPDATE access_history SET seq = seq - 999 WHERE patient_key = :p AND seq >= 1002"),
                         {"p": p})
            conn.execute(text("INSERT INTO access_history (patient_key, seq, at, entry, prev_hash, hash) "
                              "SELECT patient_key, 2, at, entry, prev_hash, hash FROM access_history "
                              "WHERE patient_key = :p AND seq = 1"), {"p": p})
        out = cli(node, "history", "verify", code=1)
        assert f"{p}: entry seq 2" in out
        assert "does not link to the previous entry" in out
        assert f"{p}: history head" in out
    finally:
        store.dispose()


