"""A caller's dossier read on PostgreSQL (``Guard.dossier``: one statement in autocommit on the guard's own
connections, ``consent._reads``): the same dossier as the transactional read, a restart of PostgreSQL between two
requests costs no request, and a database that is down is the clear "unavailable" refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from notify_servers import add_dossier
from pg import PostgresServer, migrated_postgres

from consent import AccessRefused, AuthorizationState, Guard, Reason, _dossiers
from pki import AuthMode, CodedValue, PatientIns, Principal, PurposeOfUse, Software
from registry import Store

NOW = datetime(2026, 12, 7, 10, tzinfo=UTC)
ALICE, BOB = "899700012349", "0751234567"


def _ps(idnat: str) -> Principal:
    return Principal(
        assertion_id="_a", professional_id=idnat, name="Dr TEST", profession=CodedValue("10", "1.2.250.1.71.1.2.7"),
        specialty=None, roles=(), structure_id="499700012349012", sector="SA07", auth_mode=AuthMode.DIRECT,
        purpose_of_use=PurposeOfUse.NORMAL, patient=PatientIns("284067512345688", "1.2.250.1.213.1.4.10"),
        software=Software("LPS", "H-1"), vihf_version="3.0", authn_context=None, secret_connection=False,
        signer_subject="CN=x", issued_at=NOW, valid_until=NOW + timedelta(minutes=5))


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A migrated PostgreSQL of the test's own (stopped and restarted by the tests)."""
    with migrated_postgres() as server:
        yield server


def test_the_one_statement_read_is_the_transactional_read(server):
    store = Store(server.url)
    try:
        add_dossier(store, "P1")
        with store.write() as conn:
            _dossiers.set_authorization(conn, "P1", ALICE, AuthorizationState.VALID, declared_by="patient",
                                        now="2026-12-07T10:00:00.000Z")
            _dossiers.first_access(conn, "P1", ALICE, "2026-12-07T10:00:00.000Z")
            _dossiers.set_authorization(conn, "P1", BOB, AuthorizationState.BLOCKED, declared_by="patient",
                                        now="2026-12-07T10:00:00.000Z")
        guard = Guard(store)
        for who in (ALICE, BOB, "810000000011"):
            with store.read() as conn:
                expected = _dossiers.load(conn, "P1", only=who)
            assert guard.dossier("P1", _ps(who)) == expected
        assert guard.dossier("P1", _ps(ALICE)).accessed_by == frozenset({ALICE})   # type: ignore[union-attr]
        assert guard.dossier("P1", _ps(BOB)).authorizations == {BOB: AuthorizationState.BLOCKED}  # type: ignore[union-attr]
        assert guard.dossier("NOBODY", _ps(ALICE)) is None
    finally:
        store.dispose()


def test_a_restart_between_two_reads_costs_no_request_and_down_is_unavailable(server):
    store = Store(server.url)
    try:
        add_dossier(store, "P1")
        guard = Guard(store)
        assert guard.dossier("P1", _ps(ALICE)) is not None
        server.stop("fast")
        server.start()
        assert guard.dossier("P1", _ps(ALICE)) is not None      # the dead connection's read, retried once
        server.stop("fast")
        for _ in range(2):
            with pytest.raises(AccessRefused) as refused:
                guard.dossier("P1", _ps(ALICE))
            assert refused.value.reason is Reason.UNAVAILABLE
        server.start()
        assert guard.dossier("P1", _ps(ALICE)) is not None
    finally:
        store.dispose()
