"""``cps``: the CPS card from a terminal (readers, holder, signed VIHF) and the node's XDS transactions with
the card (query, submit, retrieve). Every failure exits with its :class:`CardProblem` code.

The PIN is read from the terminal without echo, or from ``CPS_PIN`` for automation; it is never logged,
stored or accepted as an argument."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from lxml import etree

from cardreader._atr import atr_hex
from cardreader._client import XdsClient
from cardreader._errors import CardError, CardProblem
from cardreader._professional import SOFTWARE_CREDENTIAL_WARNING, Professional, patient_ins
from cardreader._readers import find_cps_reader, list_readers
from cardreader._submission import DocumentDescription
from cardreader._tls import CardTlsTunnel
from cardreader._token import CpsCard, TokenAdapter, module_path
from pki import PatientIns, PurposeOfUse, Software
from registry import Code

PIN_ENV: Final = "CPS_PIN"
SOFTWARE: Final = Software("DMP-XDS cps", os.environ.get("CPS_LPS_HOMOLOGATION", "DMP-XDS-CPS-TEST"), "0.1.0")
CLASS_SYSTEM: Final = "1.2.250.1.213.1.1.4.1"    # ANS TRE_A03 (docs/conformance.md §7)
TYPE_SYSTEM: Final = "2.16.840.1.113883.6.1"     # LOINC, JDV_J66 (docs/conformance.md §7)
LARGE_FILE: Final = 8 * 1024 * 1024             # progress bar from this size on

EXIT_CODES = "\n".join(f"  {p.exit_code:>3}  {p.label}" for p in CardProblem)
EPILOG = f"""\b
Exit codes:
    0  success
    1  unexpected error
    2  bad usage
{EXIT_CODES}

\b
Environment:
  CPS_PIN              the card's PIN, for automation (otherwise asked on the terminal, without echo)
  CPS_PKCS11_MODULE    the PKCS#11 module when --module is not given (default: the Cryptolib CPS's)
  PCSCLITE_CSOCK_NAME  the pcscd socket, when not the system's
"""


@dataclass
class Options:
    module: str | None
    token_label: str | None
    reader: str | None
    software_cert: Path | None
    software_key: Path | None
    software_auth_cert: Path | None
    software_auth_key: Path | None
    structure_id: str | None
    sector: str
    token_adapter: TokenAdapter | None = None

    @property
    def software(self) -> bool:
        return self.software_cert is not None


F = TypeVar("F", bound=Callable[..., Any])


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--module", metavar="PATH", help="PKCS#11 module of the card (default: $CPS_PKCS11_MODULE, "
              "else the Cryptolib CPS for this OS).")
@click.option("--token-label", metavar="LABEL", help="The card's token label, when several are present.")
@click.option("--reader", metavar="NAME", help="The card reader to use (default: the one holding a CPS card).")
@click.option("--software-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="PEM",
              help="TEST ONLY: sign VIHFs with this demo-PKI signature certificate instead of a card.")
@click.option("--software-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="PEM",
              help="TEST ONLY: the unencrypted private key of --software-cert.")
@click.option("--software-auth-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="PEM", help="TEST ONLY: TLS client certificate (demo PKI) for an https node.")
@click.option("--software-auth-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="PEM", help="TEST ONLY: the private key of --software-auth-cert.")
@click.option("--structure-id", metavar="ID", help="With --software-cert: the Struct_IdNat the VIHF names.")
@click.option("--sector", default="SA07", show_default=True,
              help="With --software-cert: the TRE_R02 activity sector the VIHF names.")
@click.pass_context
def cps(ctx: click.Context, module: str | None, token_label: str | None, reader: str | None,
        software_cert: Path | None, software_key: Path | None, software_auth_cert: Path | None,
        software_auth_key: Path | None, structure_id: str | None, sector: str) -> None:
    """The CPS card middleware of dmp-xds: readers, the card, VIHFs signed on the card, and the node's XDS
    transactions (ITI-18/41/43) over TLS authenticated by the card."""
    if (software_cert is None) != (software_key is None):
        raise click.UsageError("--software-cert and --software-key go together")
    if (software_auth_cert is None) != (software_auth_key is None):
        raise click.UsageError("--software-auth-cert and --software-auth-key go together")
    if software_cert is not None and not structure_id:
        raise click.UsageError("--software-cert needs --structure-id (the card would give the practice situation)")
    adapter = ctx.obj.token_adapter if isinstance(ctx.obj, Options) else None
    ctx.obj = Options(module, token_label, reader, software_cert, software_key, software_auth_cert,
                      software_auth_key, structure_id, sector, adapter)


def _patient_option(required: bool = True) -> Callable[[F], F]:
    return click.option("--ins", required=required, metavar="CX",
                        help="The patient's INS as NIR^^^&OID&ISO, e.g. '284067512345688^^^&1.2.250.1.213.1.4.10&ISO'.")


def _purpose_option(f: F) -> F:
    return click.option("--purpose", type=click.Choice([p.value for p in PurposeOfUse]), default="normal",
                        show_default=True, help="The VIHF's purpose of use (bris de glace, centre 15).")(f)


def _situation_option(f: F) -> F:
    return click.option("--situation", type=int, metavar="N",
                        help="The card's practice situation (CPS_ACTIVITY_N_PS; default: the first).")(f)


def _server_options(f: F) -> F:
    f = click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), metavar="PEM",
                     help="CA bundle to verify an https node (e.g. the node's pki/ca-bundle.pem).")(f)
    return click.option("--server", required=True, metavar="URL", help="The node, e.g. https://dmp.example:8443.")(f)


# --- commands -------------------------------------------------------------------------------------------------

@cps.command()
def readers() -> None:
    """List the card readers and the card each holds."""
    found = list_readers()
    if not found:
        raise CardError(CardProblem.NO_READER, "no card reader is connected")
    for r in found:
        if r.atr is None:
            click.echo(f"{r.name}\t(empty)")
        else:
            kind = r.model.value if r.model else "not a CPS card"
            click.echo(f"{r.name}\t{kind}\tATR {atr_hex(r.atr)}")


@cps.command()
@click.option("--login/--no-login", default=None,
              help="Ask the PIN and list the practice situations (default: when a terminal or CPS_PIN is there).")
@click.pass_obj
def info(opts: Options, login: bool | None) -> None:
    """Who holds the card (no PIN needed); after login, the practice situations."""
    with ExitStack() as stack:
        card = stack.enter_context(_open_card(opts))
        h = card.holder
        click.echo(f"IdNat_PS:   {h.idnat_ps}")
        click.echo(f"Name:       {h.display_name}")
        click.echo(f"Profession: {h.profession} {h.profession_label}")
        click.echo(f"Specialty:  {h.specialty or '-'}")
        click.echo(f"Test card:  {'yes' if h.test_card else 'no'}")
        if login is None:
            login = PIN_ENV in os.environ or sys.stdin.isatty()
        if login:
            card.login(_pin())
            for s in card.practice_situations():
                click.echo(f"Situation {s.number}: structure {s.structure_id} {s.structure_name} sector {s.sector}")


@cps.command()
@_patient_option()
@_purpose_option
@_situation_option
@click.pass_obj
def vihf(opts: Options, ins: str, purpose: str, situation: int | None) -> None:
    """Print a VIHF signed by the card for the patient and purpose (saml2:Assertion XML)."""
    with _professional(opts, situation) as (professional, _):
        assertion = professional.vihf(_ins(ins), PurposeOfUse(purpose))
        click.echo(etree.tostring(assertion, encoding="unicode"))


@cps.command()
@_server_options
@_patient_option()
@_purpose_option
@_situation_option
@click.pass_obj
def query(opts: Options, server: str, ca_file: str | None, ins: str, purpose: str, situation: int | None) -> None:
    """The patient's approved documents (ITI-18 FindDocuments), one per line."""
    with _xds(opts, server, ca_file, situation) as client:
        entries = client.find_documents(_ins(ins), purpose=PurposeOfUse(purpose))
    click.echo("uniqueId\trepositoryUniqueId\tcreationTime\tclassCode\ttypeCode\tmimeType\tsize\ttitle")
    for e in entries:
        click.echo("\t".join([e.unique_id, e.repository_unique_id or "", e.creation_time or "",
                              e.class_code.code if e.class_code else "", e.type_code.code if e.type_code else "",
                              e.mime_type, str(e.size or ""), e.title.value if e.title else ""]))


@cps.command()
@_server_options
@_patient_option()
@_situation_option
@click.pass_obj
def status(opts: Options, server: str, ca_file: str | None, ins: str, situation: int | None) -> None:
    """TD0.2: does the patient have a DMP, am I authorised on it, am I the médecin traitant."""
    with _xds(opts, server, ca_file, situation) as client:
        s = client.existence_test(_ins(ins))
    if not s.exists:
        click.echo("DMP: none for this patient")
        return
    click.echo(f"DMP: {'closed' if s.closed else 'open'}")
    click.echo(f"authorization: {s.authorization}")
    click.echo(f"médecin traitant: {'yes' if s.treating_doctor else 'no'}")


@cps.command("declare-consent")
@_server_options
@_patient_option()
@click.option("--remove", is_flag=True, help="Remove my own authorisation instead.")
@_situation_option
@click.pass_obj
def declare_consent(opts: Options, server: str, ca_file: str | None, ins: str, remove: bool,
                    situation: int | None) -> None:
    """TD0.3: declare that the patient consented to my access to their DMP (after asking them), or --remove it."""
    with _xds(opts, server, ca_file, situation) as client:
        click.echo(f"authorization: {client.declare_consent(_ins(ins), remove=remove)}")


@cps.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_server_options
@_patient_option()
@click.option("--class", "class_code", required=True, metavar="CODE", help="classCode (TRE_A03), e.g. 10.")
@click.option("--type", "type_code", required=True, metavar="CODE", help="typeCode (LOINC), e.g. 11488-4.")
@click.option("--title", help="The document's title (default: the file name).")
@click.option("--mime-type", default="application/pdf", show_default=True)
@click.option("--format", "format_code", default="urn:ihe:iti:xds-sd:pdf:2008", show_default=True,
              help="formatCode (system 1.3.6.1.4.1.19376.1.2.3).")
@_purpose_option
@_situation_option
@click.pass_obj
def submit(opts: Options, file: Path, server: str, ca_file: str | None, ins: str, class_code: str, type_code: str,
           title: str | None, mime_type: str, format_code: str, purpose: str, situation: int | None) -> None:
    """Send FILE to the patient's DMP (ITI-41, streamed as MTOM); prints the document's uniqueId."""
    description = DocumentDescription(
        class_code=Code(class_code, CLASS_SYSTEM, class_code), type_code=Code(type_code, TYPE_SYSTEM, type_code),
        title=title or file.name, mime_type=mime_type,
        format_code=Code(format_code, "1.3.6.1.4.1.19376.1.2.3", format_code))
    size = file.stat().st_size
    with _xds(opts, server, ca_file, situation) as client:
        if size >= LARGE_FILE:
            with click.progressbar(length=size, label="sending", file=sys.stderr) as bar:
                done = client.submit(file, _ins(ins), description, purpose=PurposeOfUse(purpose), progress=bar.update)
        else:
            done = client.submit(file, _ins(ins), description, purpose=PurposeOfUse(purpose))
    click.echo(done.unique_id)


@cps.command()
@_server_options
@click.option("--unique-id", required=True, metavar="UID", help="The document's uniqueId.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE")
@click.option("--repository-id", metavar="OID", help="Its repositoryUniqueId (default: asked of the registry).")
@_patient_option(required=False)
@_purpose_option
@_situation_option
@click.pass_obj
def retrieve(opts: Options, server: str, ca_file: str | None, unique_id: str, output: Path,
             repository_id: str | None, ins: str | None, purpose: str, situation: int | None) -> None:
    """Fetch a document (ITI-43) into FILE, byte for byte."""
    patient = _ins(ins) if ins else None
    with _xds(opts, server, ca_file, situation) as client:
        if repository_id is None:
            entry = client.get_document(unique_id, patient=patient, purpose=PurposeOfUse(purpose))
            if entry is None or not entry.repository_unique_id:
                raise CardError(CardProblem.SERVER_REFUSED, f"the registry knows no document {unique_id}")
            repository_id = entry.repository_unique_id
        client.retrieve(unique_id, repository_id, output, patient=patient, purpose=PurposeOfUse(purpose))
    click.echo(str(output))


# --- plumbing -------------------------------------------------------------------------------------------------

def _ins(cx: str) -> PatientIns:
    try:
        return patient_ins(cx)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ins") from None


def _pin() -> str:
    pin = os.environ.get(PIN_ENV)
    if pin is None:
        try:
            pin = getpass.getpass("PIN of the CPS card: ")
        except (EOFError, KeyboardInterrupt):
            raise click.Abort() from None
    return pin


@contextmanager
def _open_card(opts: Options) -> Iterator[CpsCard]:
    status = find_cps_reader(opts.reader)
    card = CpsCard.open(module_path(opts.module), opts.token_label, reader=status.name, adapter=opts.token_adapter)
    try:
        yield card
    finally:
        card.close()


@contextmanager
def _professional(opts: Options, situation: int | None) -> Iterator[tuple[Professional, str | None]]:
    """The professional, and the PIN when a card was opened (for the TLS hop, never kept beyond)."""
    if opts.software:
        click.echo(SOFTWARE_CREDENTIAL_WARNING, err=True)
        assert opts.software_cert is not None
        assert opts.software_key is not None
        assert opts.structure_id
        yield Professional.from_software_credential(opts.software_cert, opts.software_key, SOFTWARE,
                                                    structure_id=opts.structure_id, sector=opts.sector), None
        return
    with _open_card(opts) as card:
        pin = _pin()
        card.login(pin)
        yield Professional.from_card(card, SOFTWARE, situation), pin


@contextmanager
def _xds(opts: Options, server: str, ca_file: str | None, situation: int | None) -> Iterator[XdsClient]:
    with ExitStack() as stack:
        professional, pin = stack.enter_context(_professional(opts, situation))
        transport_url, client_cert, tunnel = None, None, None
        card = professional.card
        if server.startswith("https://") and card is not None and pin is not None:
            tunnel = CardTlsTunnel(module=card.module, token_label=card.token_label, key_id=card.authentication_id,
                                   certificate=card.authentication_certificate, server_url=server,
                                   ca_file=ca_file or _system_cas(), pin=pin)
            transport_url = stack.enter_context(tunnel).url
        elif server.startswith("https://") and opts.software_auth_cert and opts.software_auth_key:
            client_cert = (str(opts.software_auth_cert), str(opts.software_auth_key))
        del pin
        try:
            yield stack.enter_context(XdsClient(server, professional, transport_url=transport_url,
                                                ca_file=ca_file, client_cert=client_cert))
        except CardError as exc:
            # Through the hop a failed handshake only shows as a closed connection; stunnel says why.
            if tunnel is not None and exc.problem is CardProblem.SERVER_UNREACHABLE and tunnel.errors():
                raise CardError(CardProblem.TLS, f"TLS with the card failed: {tunnel.errors()}") from None
            raise


def _system_cas() -> str:
    import ssl
    return ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"


def run(argv: Sequence[str], *, token_adapter: TokenAdapter | None = None) -> int:
    """Run ``cps`` with ``argv`` and return its exit code. ``token_adapter`` wraps the card's token (tests put
    the chip's PIN rule around SoftHSM2 with it)."""
    try:
        cps.main(list(argv), prog_name="cps", standalone_mode=False,
                 obj=Options(None, None, None, None, None, None, None, None, "SA07", token_adapter))
    except CardError as exc:
        click.echo(f"cps: {exc.problem.label}: {exc}", err=True)
        return exc.problem.exit_code
    except click.exceptions.Abort:
        click.echo("cps: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
