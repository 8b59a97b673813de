"""A copy of everything (R13, docs/portal.md "Export"): a zip with the documents the patient can see, the
access history, the dossier's settings and an index page that opens in any browser, offline."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from consent import DossierView, Recorded
from portal._documents import DocumentView
from portal._web import templates
from repository import BlobInfo

_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt", "image/jpeg": ".jpg", "text/xml": ".xml",
               "application/xml": ".xml", "text/html": ".html"}


def safe_name(title: str) -> str:
    name = re.sub(r"[^0-9A-Za-zÀ-ÿ._ -]+", "_", title).strip(" ._") or "document"
    return name[:60]


def file_name(n: int, doc: DocumentView) -> str:
    return f"documents/{n:03d}-{safe_name(doc.title)}{_EXTENSIONS.get(doc.mime_type, '.bin')}"


def write_export(documents: Sequence[tuple[DocumentView, BlobInfo | None]], history: Sequence[Recorded],
                 dossier: DossierView, wishes: dict[str, str | None], spool: Path) -> Path:
    """The zip, as a temporary file in ``spool`` (the caller deletes it once sent)."""
    fd, name = tempfile.mkstemp(dir=spool, suffix=".zip")
    path = Path(name)
    listed: list[tuple[DocumentView, str | None]] = []
    with open(fd, "wb") as out, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, (doc, blob) in enumerate(documents, 1):
            if blob is None:
                listed.append((doc, None))
                continue
            arcname = file_name(n, doc)
            if isinstance(blob.content, Path):
                z.write(blob.content, arcname)
            else:   # an object store: copied chunk by chunk
                with z.open(arcname, "w") as member:
                    for chunk in blob.content:
                        member.write(chunk)
            listed.append((doc, arcname))
        z.writestr("historique.csv", _history_csv(history))
        z.writestr("dossier.json", json.dumps({
            "created_at": dossier.created_at, "closed_at": dossier.closed_at, "purge_after": dossier.purge_after,
            "treating_doctor": dossier.treating_doctor, "allow_break_glass": dossier.allow_break_glass,
            "allow_centre_15": dossier.allow_centre_15,
            "authorizations": [{"professional": p, "state": s, "by": b, "at": a}
                               for p, s, b, a in dossier.authorizations],
            "wishes": wishes}, ensure_ascii=False, indent=2))
        z.writestr("index.html", templates.get_template("export_index.html").render(
            documents=listed, history=history, dossier=dossier, wishes=wishes))
    return path


def _history_csv(history: Sequence[Recorded]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["date", "action", "acteur", "type", "profession", "structure", "urgence", "autorisé", "motif",
                "documents", "détail"])
    for r in history:
        e = r.entry
        w.writerow([r.at, e.action, e.actor_name, e.actor_kind, e.profession or "", e.structure or "",
                    "oui" if e.emergency else "non", "oui" if e.allowed else "non", e.reason,
                    " ".join(e.documents), e.detail or ""])
    return buf.getvalue()
