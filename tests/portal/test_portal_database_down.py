"""The patients' space with its database down (PostgreSQL stopped under a running node): every page that needs
the database answers 503 with the portal's own page ("momentanément indisponible"), the log names the failure
without its statement or parameters, and the same pages work again once the database is back."""

from __future__ import annotations

from pg import PostgresServer, postgres_fixture  # noqa: F401 - the `postgres` fixture
from portal_client import Client, activated, csrf_of, login_attempt, start_portal_node

from registry import Store

UNAVAILABLE = "Le service est momentanément indisponible"


def test_pages_answer_503_while_the_database_is_down_and_work_again_after(tmp_path, postgres: PostgresServer):
    portal = start_portal_node(tmp_path / "node", postgres.url)
    try:
        _nir, login_id, password = activated(portal, "patiente@example.fr")
        with Client(portal.url) as anonymous, Client(portal.url) as signed_in:
            token = csrf_of(anonymous.get("/connexion").text)
            assert login_attempt(signed_in, login_id, password).status_code == 200   # session at the code step
            # The test cluster runs with synchronous_commit=off (tests/support/pg.py): flush the session's commit
            # before the crash-like stop, so that it is still there when the database comes back.
            store = Store(postgres.url)
            with store.engine.connect() as conn:
                conn.exec_driver_sql("CHECKPOINT")
            store.dispose()
            postgres.stop("immediate")
            answers = {
                "login": anonymous.post("/connexion", data={"csrf": token, "login": login_id, "password": "x"}),
                "session": signed_in.get("/code"),
            }
            for what, r in answers.items():
                assert r.status_code == 503, (what, r.status_code, r.text[:300])
                assert UNAVAILABLE in r.text, what
                assert r.headers["content-security-policy"].startswith("default-src 'none'"), what
            postgres.start()
            assert anonymous.post("/connexion", data={"csrf": token, "login": login_id, "password": "x"}
                                  ).status_code == 400
            assert signed_in.get("/code").status_code == 200
        log = portal.node.log.read_text()
        assert "portal database error: OperationalError" in log
        assert "Traceback" not in log
        assert login_id not in log
    finally:
        portal.node.stop()
        portal.smtp.stop()
