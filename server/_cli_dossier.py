"""``dmp patient ...`` and ``dmp history ...``: the operator administers dossiers on the patient's behalf
(each change is decided by the consent rules and recorded in the patient's history) and reads or verifies the
access histories. Exit codes: 0 done, 2 refused or invalid (the message says why), 1 history does not verify."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import click

from consent import AccessRefused, DossierAdmin, Guard, verify_history
from registry import PatientError, Registry, Store
from server._config import Config

T = TypeVar("T")
DATA = click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
                    help="Data directory of the node (database, blobs, config.json).")
INS = click.option("--ins", required=True, help="The patient's INS as CX, e.g. 'NIR^^^&1.2.250.1.213.1.4.10&ISO'.")
PS = click.option("--ps", "professional", required=True, help="The professional's IdNat_PS, e.g. 810001234567.")


@contextmanager
def _store(data_dir: Path) -> Iterator[Store]:
    store = Store(Config.load(data_dir).database_url)
    try:
        yield store
    finally:
        store.dispose()


@contextmanager
def _admin(data_dir: Path) -> Iterator[DossierAdmin]:
    with _store(data_dir) as store:
        yield DossierAdmin(Registry(store), Guard(store))


def _run(data_dir: Path, work: Callable[[DossierAdmin], T]) -> T:
    with _admin(data_dir) as admin:
        try:
            return work(admin)
        except (PatientError, AccessRefused) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group()
def patient() -> None:
    """Patient dossiers (DMP): creation with the patient's consent, authorisations, blocks, médecin traitant,
    emergency access, closure. Every change is recorded in the patient's access history."""


@patient.command("create")
@DATA
@INS
@click.option("--minor", is_flag=True, help="The patient is a minor: legal representatives act for them.")
@click.option("--email", help="Where the patient's notifications go (and the one-time codes of the portal).")
@click.option("--mobile", help="Mobile number for SMS notifications.")
@click.option("--consent-by", type=click.Choice(["patient", "representative"]), default="patient",
              show_default=True, help="Who gave the consent that opens the DMP (R1).")
def patient_create(data_dir: Path, ins: str, minor: bool, email: str | None, mobile: str | None,
                   consent_by: str) -> None:
    """Open a DMP with the patient's consent; prints the creation code to hand to the patient (it activates
    their online space and is shown only once)."""
    created = _run(data_dir, lambda a: a.create(ins, minor=minor, email=email, mobile=mobile,
                                                consent_by=consent_by))
    click.echo(f"patient {created.patient_key} created")
    click.echo(f"creation code: {created.creation_code}")


@patient.command("show")
@DATA
@INS
@click.option("--json", "as_json", is_flag=True)
def patient_show(data_dir: Path, ins: str, as_json: bool) -> None:
    """The dossier's state: consent, médecin traitant, emergency settings, authorised and blocked professionals."""
    view = _run(data_dir, lambda a: a.show(ins))
    if as_json:
        click.echo(json.dumps(asdict(view), indent=2, ensure_ascii=False))
        return
    click.echo(f"patient {view.patient_key}: {'CLOSED ' + (view.closed_at or '') if view.closed_at else 'open'}")
    click.echo(f"  created {view.created_at}, consent by {view.consent_by} ({view.consent_channel})"
               f"{', minor' if view.minor else ''}")
    click.echo(f"  médecin traitant: {view.treating_doctor or '-'}")
    click.echo(f"  emergency access: bris de glace {'allowed' if view.allow_break_glass else 'OPPOSED'}, "
               f"centre 15 {'allowed' if view.allow_centre_15 else 'OPPOSED'}, masked documents in emergency "
               f"{'shown' if view.masked_visible_in_emergency else 'hidden'}")
    if view.purge_after:
        click.echo(f"  kept until {view.purge_after}")
    for professional, state, by, at in view.authorizations:
        click.echo(f"  {professional}: {state} (by {by}, {at})")
    click.echo(f"  history: {view.history_entries} entries")


def _professional_command(name: str, method: str, help_text: str) -> None:
    @patient.command(name, help=help_text)
    @DATA
    @INS
    @PS
    def command(data_dir: Path, ins: str, professional: str) -> None:
        _run(data_dir, lambda a: getattr(a, method)(ins, professional))
        click.echo(f"{name}: {professional} on {ins}: done")


_professional_command("authorize", "authorize", "Authorise a professional on the dossier (R7; the patient's consent).")
_professional_command("revoke", "revoke", "End a professional's authorisation (R13).")
_professional_command("block", "block", "Block a professional: no access whatever else applies (R17; not the MT).")
_professional_command("unblock", "unblock", "Lift a block.")


@patient.command("set-mt")
@DATA
@INS
@click.option("--ps", "professional", help="IdNat_PS of the médecin traitant.")
@click.option("--none", "remove", is_flag=True, help="The dossier has no médecin traitant any more.")
def patient_set_mt(data_dir: Path, ins: str, professional: str | None, remove: bool) -> None:
    """Name the médecin traitant (who sees every document, masked ones included; R10)."""
    if (professional is None) == (not remove):
        raise click.UsageError("give either --ps IDNAT or --none")
    _run(data_dir, lambda a: a.set_treating_doctor(ins, None if remove else professional))
    click.echo(f"médecin traitant of {ins}: {professional or 'none'}")


@patient.command("oppose-emergency")
@DATA
@INS
@click.option("--mode", type=click.Choice(["bris_de_glace", "centre_15", "both"]), default="both", show_default=True)
@click.option("--withdraw", is_flag=True, help="Withdraw the opposition: the mode is allowed again.")
@click.option("--masked-visible/--masked-hidden", default=None,
              help="Whether masked documents are shown in an emergency (default unchanged).")
def patient_oppose_emergency(data_dir: Path, ins: str, mode: str, withdraw: bool, masked_visible: bool | None
                             ) -> None:
    """Oppose (or allow again) emergency access: bris de glace and/or SAMU Centre 15 regulation (R11)."""
    _run(data_dir, lambda a: a.set_emergency_access(
        ins, break_glass=withdraw if mode in ("bris_de_glace", "both") else None,
        centre_15=withdraw if mode in ("centre_15", "both") else None, masked_visible=masked_visible))
    click.echo(f"emergency access {mode} on {ins}: {'allowed' if withdraw else 'opposed'}")


@patient.command("close")
@DATA
@INS
def patient_close(data_dir: Path, ins: str) -> None:
    """Close the dossier: read-only for the patient, closed to professionals, kept 10 years (R13, R29)."""
    _run(data_dir, lambda a: a.close(ins))
    click.echo(f"dossier {ins} closed")


@patient.command("reopen")
@DATA
@INS
def patient_reopen(data_dir: Path, ins: str) -> None:
    """Reopen a closed dossier."""
    _run(data_dir, lambda a: a.reopen(ins))
    click.echo(f"dossier {ins} reopened")


@click.group()
def history() -> None:
    """The patients' access histories (who accessed what, when, why; allowed and refused)."""


@history.command("show")
@DATA
@INS
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=click.IntRange(1), help="Only the newest N entries.")
def history_show(data_dir: Path, ins: str, as_json: bool, limit: int | None) -> None:
    """The patient's history, newest first."""
    records = _run(data_dir, lambda a: a.history(ins, limit=limit))
    if as_json:
        click.echo(json.dumps([{"seq": r.seq, "at": r.at, "hash": r.hash, **asdict(r.entry)} for r in records],
                              indent=2, ensure_ascii=False))
        return
    for r in records:
        e = r.entry
        who = f"{e.actor_name} ({e.actor_id}, {e.actor_kind}" + (f", structure {e.structure}" if e.structure else "") \
            + ")"
        mode = f" [{e.purpose}]" if e.purpose and e.purpose != "normal" else ""
        docs = f" documents {', '.join(e.documents)}" if e.documents else ""
        outcome = "allowed" if e.allowed else f"REFUSED ({e.reason})"
        click.echo(f"{r.seq:>6} {r.at} {e.transaction} {e.action}{mode} by {who}: {outcome}{docs}"
                   + (f" - {e.detail}" if e.detail else ""))


@history.command("verify")
@DATA
def history_verify(data_dir: Path) -> None:
    """Check every history's chain: names each edited, inserted or deleted entry; exit 1 if any."""
    with _store(data_dir) as store:
        problems = verify_history(store)
    for p in problems:
        click.echo(f"history does not verify: {p}", err=True)
    if problems:
        sys.exit(1)
    click.echo("every access history verifies")
