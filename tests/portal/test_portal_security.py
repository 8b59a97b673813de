"""The portal's security over plain HTTP against a real node (docs/portal.md "Security"): headers, cookie
flags, CSRF, the same answer whatever is wrong (no user enumeration), the lock after repeated failures,
every page behind a live session."""

from __future__ import annotations

import re

from portal_client import EMAIL, Client, PortalNode, activated, csrf_of, login_attempt


def test_headers_and_cookies(portal: PortalNode):
    with Client(portal.url) as c:
        r = c.get("/connexion")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src" not in csp
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "Secure" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/portal" in cookie
        assert "<script" not in r.text
        assert " style=" not in r.text
        css = c.get("/static/portal.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert re.search(r'href="(https?:)?//', r.text) is None          # every asset from the node itself


def test_csrf_token_required_on_every_post(portal: PortalNode):
    with Client(portal.url) as c:
        c.get("/connexion")
        r = c.post("/connexion", data={"login": "1234abcd", "password": "x"})
        assert r.status_code == 403
        r = c.post("/connexion", data={"csrf": "forged", "login": "1234abcd", "password": "x"})
        assert r.status_code == 403


def test_same_answer_for_unknown_login_wrong_password_and_locked_account_then_unlocked_by_time(portal: PortalNode):
    email = "verrou@example.fr"
    _, login_id, password = activated(portal, email)
    with Client(portal.url) as c:
        unknown = login_attempt(c, "0000zzzz", "whatever1")
        wrong = login_attempt(c, login_id, "not the password")
        assert unknown.status_code == wrong.status_code == 400
        message = re.search(r'role="alert"><p>([^<]+)<', wrong.text)
        assert message is not None
        assert message.group(1) in unknown.text
        for _ in range(4):                         # 5 wrong passwords in a row lock the account ...
            login_attempt(c, login_id, "not the password")
        locked = login_attempt(c, login_id, password)     # ... even against the right one
        assert locked.status_code == 400
        assert message.group(1) in locked.text
        sent = len(portal.codes_sent_to(email))
        assert sent == 0                                  # no code was sent for a locked account


def test_activation_refusals_do_not_tell_which_item_was_wrong(portal: PortalNode):
    nir, _, code = portal.create_patient(email="enum@example.fr")
    with Client(portal.url) as c:
        token = csrf_of(c.get("/activation").text)
        answers = [c.post("/activation", data={"csrf": token, "code": code_, "nir": nir_, "nir2": nir_,
                                               "vitale": "12345678", "email": "enum@example.fr"})
                   for code_, nir_ in ((code, "284067512345600"), ("AAAA-BBBB-CCCC", nir))]
        texts = [re.search(r'role="alert"><p>([^<]+)<', a.text) for a in answers]
        assert all(a.status_code == 400 for a in answers)
        assert texts[0] is not None
        assert texts[1] is not None
        assert texts[0].group(1) == texts[1].group(1)
        ok = c.post("/activation", data={"csrf": token, "code": code, "nir": nir, "nir2": nir, "vitale": "12345678",
                                         "email": "enum@example.fr"})
        assert ok.status_code == 200
        again = c.post("/activation", data={"csrf": token, "code": code, "nir": nir, "nir2": nir, "vitale": "12345678",
                                            "email": "enum@example.fr"})
        assert again.status_code == 400                   # activated once only


def test_pages_need_a_logged_in_session(portal: PortalNode):
    with Client(portal.url) as c:
        for path in ("/documents", "/historique", "/professionnels", "/parametres", "/code", "/premiere-connexion"):
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/portal/connexion"), path
        c.jar["dmp_portal_session"] = "forged-session-id"
        r = c.get("/documents")
        assert r.status_code == 303


def test_a_session_between_password_and_code_does_not_open_the_pages(portal: PortalNode):
    _, login_id, password = activated(portal, EMAIL)
    with Client(portal.url) as c:
        r = login_attempt(c, login_id, password)
        assert r.status_code == 200
        assert "Code de connexion" in r.text
        assert c.get("/documents").status_code == 303
