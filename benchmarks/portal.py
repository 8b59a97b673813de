"""The patients' portal: what a login costs (argon2id, the one-time code through a real SMTP server), and the
latency of the documents page and of hiding a document (an ITI-57 new version) against a real `dmp serve`.

    .venv/bin/python benchmarks/portal.py [--documents 20] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / p) for p in ("tests/support", "")]

from argon2 import PasswordHasher  # noqa: E402
from consent_client import doc, feed  # noqa: E402
from portal_client import Client, csrf_of, start_portal_node  # noqa: E402
from vihf_client import ALICE  # noqa: E402


def ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=20) if len(samples) > 1 else samples * 19
    return f"median {statistics.median(samples):6.1f} ms, p95 {q[18]:6.1f} ms (n={len(samples)})"


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--documents", type=int, default=20)
    args.add_argument("--rounds", type=int, default=20)
    a = args.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    hasher = PasswordHasher()
    stored = hasher.hash("un mot de passe solide")
    t = []
    for _ in range(a.rounds):
        start = time.perf_counter()
        hasher.verify(stored, "un mot de passe solide")
        t.append((time.perf_counter() - start) * 1000)
    print(f"argon2id verify (argon2-cffi defaults):      {ms(t)}")
    with tempfile.TemporaryDirectory() as tmp:
        portal = start_portal_node(Path(tmp) / "node")
        try:
            run(portal, a.documents, a.rounds)
        finally:
            portal.node.stop()
            portal.smtp.stop()


def run(portal, documents: int, rounds: int) -> None:  # type: ignore[no-untyped-def]
    email = "bench@example.fr"
    nir, ins, code = portal.create_patient(email=email)
    uids = []
    for i in range(documents):
        d = doc(f"compte rendu {i}".encode(), ins)
        assert feed(portal.node, ALICE, ins, d).status == "Success"
        uids.append(d.unique_id)
    c = Client(portal.url)
    token = csrf_of(c.get("/activation").text)
    page = c.post("/activation", data={"csrf": token, "code": code, "nir": nir, "nir2": nir, "vitale": "12345678",
                                       "email": email})
    login_id = page.text.split('id="login-id">')[1].split("<")[0]
    password = page.text.split('id="initial-password">')[1].split("<")[0].replace("&amp;", "&")
    logins, codes = [], []
    for _ in range(rounds):
        c.jar.pop("dmp_portal_session", None)
        seen = len(portal.codes_sent_to(email))
        start = time.perf_counter()
        token = csrf_of(c.get("/connexion").text)
        r = c.post("/connexion", data={"csrf": token, "login": login_id, "password": password})
        assert r.status_code == 200, r.text
        logins.append((time.perf_counter() - start) * 1000)
        otp = portal.next_code(email, seen)
        start = time.perf_counter()
        r = c.post("/code", data={"csrf": csrf_of(r.text), "code": otp})
        assert r.status_code == 303, r.text
        codes.append((time.perf_counter() - start) * 1000)
    print(f"password step (argon2 + code sent by SMTP):  {ms(logins)}")
    print(f"code step (new session, history entry):      {ms(codes)}")
    lists = []
    for _ in range(rounds):
        start = time.perf_counter()
        r = c.get("/documents")
        assert r.status_code == 200
        lists.append((time.perf_counter() - start) * 1000)
    print(f"documents page, {documents} documents:            {ms(lists)}")
    masks = []
    csrf = csrf_of(c.get("/parametres").text)
    for i in range(rounds):
        uid = uids[i % len(uids)]
        op = "masquer" if (i // len(uids)) % 2 == 0 else "afficher"
        start = time.perf_counter()
        r = c.post(f"/documents/{uid}/{op}", data={"csrf": csrf})
        assert r.status_code == 303, r.text
        masks.append((time.perf_counter() - start) * 1000)
    print(f"hide/show a document (ITI-57 new version):   {ms(masks)}")


if __name__ == "__main__":
    main()
