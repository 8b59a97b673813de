"""The ``dmp`` command: node set-up, serving, patient administration."""

from __future__ import annotations

import ipaddress
import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from pki import TEST_PKI_WARNING, PsIdentity, StructureIdentity, TestPki
from registry import MetadataProfile, Store
from server._cli_dossier import history, patient
from server._config import Config

DATA = click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
                    help="Data directory of the node (database, blobs, config.json).")


@click.group()
def main() -> None:
    """dmp-xds: IHE XDS.b registry and repository for the French DMP."""


@main.command()
@DATA
@click.option("--repository-unique-id", help="OID of this repository (default: a new one under the test arc).")
@click.option("--database-url", help="SQLAlchemy URL (default: SQLite file in the data directory).")
@click.option("--trust-anchor", "trust_anchors", multiple=True, type=click.Path(path_type=Path, exists=True,
              dir_okay=False), help="PEM file of CA certificates (roots and intermediates) that VIHF signers and "
              "TLS clients must chain to (repeatable). Replaces the demo PKI.")
@click.option("--crl", "crls", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="CRL file (PEM or DER) of one of those CAs (repeatable).")
@click.option("--metadata-profile", type=click.Choice([p.value for p in MetadataProfile]), default=None,
              help="Codes registration accepts: 'dmp' (default) the DMP value sets, 'ihe' any code "
              "(IHE test plans with other code systems); see docs/conformance.md.")
@click.option("--blob-store-url", help="Where documents are stored: s3://BUCKET[/PREFIX] (default: files in "
              "DATA/blobs). Credentials come from the AWS variables and files (boto3's default chain).")
@click.option("--s3-endpoint-url", help="URL of the S3-compatible object storage (default: AWS).")
@click.option("--partitions", type=click.IntRange(0, 1024), default=0, show_default=True,
              help="PostgreSQL only, when the database is created: hash-partition the registry's objects by "
              "patient into this many partitions (docs/registry-storage.md); 0: one table.")
def init(data_dir: Path, repository_unique_id: str | None, database_url: str | None,
         trust_anchors: tuple[Path, ...], crls: tuple[Path, ...], metadata_profile: str | None,
         blob_store_url: str | None, s3_endpoint_url: str | None, partitions: int) -> None:
    """Create a node in DATA, or bring an existing node's database schema up to date.

    Without --trust-anchor, a node that has no trust configured gets a demo test PKI in DATA/pki (tests and
    demos only) whose CAs and CRLs become its trust anchors, with a TLS server certificate for localhost.

    Several nodes serve one DMP when they are initialised with the same --database-url (PostgreSQL),
    --blob-store-url (S3) and --repository-unique-id (docs/deployment.md)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        cfg = Config.load(data_dir)
    except FileNotFoundError:
        cfg = Config.new(data_dir, repository_unique_id=repository_unique_id, database_url=database_url)
    if trust_anchors:
        cfg = replace(cfg, trust_anchors=[str(p.resolve()) for p in trust_anchors],
                      crls=[str(p.resolve()) for p in crls])
    elif crls:
        raise click.UsageError("--crl goes with --trust-anchor")
    elif not cfg.trust_anchors:
        cfg = _demo_trust(cfg)
    if metadata_profile is not None:
        cfg = replace(cfg, metadata_profile=metadata_profile)
    if blob_store_url is not None or s3_endpoint_url is not None:
        cfg = replace(cfg, blob_store_url=blob_store_url or cfg.blob_store_url,
                      s3_endpoint_url=s3_endpoint_url or cfg.s3_endpoint_url)
    if cfg.blob_store_url is not None:
        _check_bucket(cfg)
    elif cfg.s3_endpoint_url is not None:
        raise click.UsageError("--s3-endpoint-url goes with --blob-store-url s3://BUCKET[/PREFIX]")
    cfg.save()
    cfg.blob_dir.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.database_url)
    try:
        store.migrate(partitions=partitions)
    except ValueError as refused:
        raise click.UsageError(str(refused)) from refused
    finally:
        store.dispose()
    click.echo(f"node ready in {cfg.data_dir} (repositoryUniqueId {cfg.repository_unique_id})")


def _check_bucket(cfg: Config) -> None:
    """The bucket of ``blob_store_url`` exists and these credentials may use it: said at init, not at the
    first document."""
    from botocore.exceptions import BotoCoreError, ClientError  # boto3 only for a node that uses S3

    from repository import S3Location, s3_client

    try:
        location = S3Location.parse(cfg.blob_store_url or "")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        s3_client(cfg.s3_endpoint_url, max_connections=1).head_bucket(Bucket=location.bucket)
    except (BotoCoreError, ClientError) as exc:
        raise click.UsageError(f"bucket {location.bucket!r} at {cfg.s3_endpoint_url or 'AWS'} cannot be used: "
                               f"{exc}") from None


def _demo_trust(cfg: Config) -> Config:
    """A demo TestPki in DATA/pki: its CAs and CRLs as trust, a TLS server certificate for localhost."""
    pki_dir = cfg.data_dir / "pki"
    click.echo(TEST_PKI_WARNING)
    try:
        test_pki = TestPki.load(pki_dir)
    except FileNotFoundError:
        test_pki = TestPki.create(pki_dir)
    server = test_pki.issue_server(("localhost", "127.0.0.1"))
    chain = server.certificate_path.with_name(server.certificate_path.name.removesuffix(".pem") + ".chain.pem")
    cfg = replace(
        cfg,
        trust_anchors=["pki/trust-anchors.pem", "pki/intermediates.pem"],
        crls=[f"pki/{name}.crl.pem" for name in ("root", "ca-personnes", "ca-organisations")],
        tls_cert=str(chain.relative_to(cfg.data_dir)),
        tls_key=str(server.key_path.relative_to(cfg.data_dir)),
        tls_client_ca="pki/ca-bundle.pem",
    )
    click.echo(f"demo PKI in {pki_dir}: its CAs are this node's trust anchors; TLS server certificate "
               f"{chain} for localhost/127.0.0.1")
    click.echo("issue a professional's credentials (CPS-like signature + authentication certificates) with:\n"
               f"  dmp pki issue --dir {pki_dir} ps --rpps 99700012349 --family-name TESTEUR --given-name ALICE "
               "--specialty SM26\n"
               "sign VIHFs with the signature certificate; use the authentication certificate as TLS client "
               f"certificate, and {pki_dir / 'ca-bundle.pem'} to verify the server")
    return cfg


@main.command()
@DATA
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--registry-url", help="Register with a remote Document Registry over ITI-42 instead of in-process.")
@click.option("--database-url", help="Override the configured database URL.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes (use about one per core; the database serialises writes).")
@click.option("--tls", is_flag=True, help="HTTPS with a required client certificate (TLS 1.2+), using the "
              "configured tls_cert/tls_key/tls_client_ca.")
@click.option("--allow-plain-http", is_flag=True, help="Serve plain HTTP on a non-loopback --host (behind a "
              "TLS-terminating proxy, or for development).")
@click.option("--no-vihf", is_flag=True, help="DEVELOPMENT ONLY: process XDS requests without verifying the VIHF.")
@click.option("--no-consent", is_flag=True, help="BENCHMARKS ONLY: verify the VIHF but do not apply the DMP "
              "consent rules (any authenticated professional reads any patient).")
def serve(data_dir: Path, host: str, port: int, registry_url: str | None, database_url: str | None,
          log_level: str, workers: int, tls: bool, allow_plain_http: bool, no_vihf: bool, no_consent: bool) -> None:
    """Serve /xds/registry and /xds/repository (SOAP 1.2), and /health."""
    import uvicorn

    from server._app import create_app
    from server._logging import install as install_log_redaction
    from server._notifications import NotificationConfigError, notification_channels
    from server._supervisor import frozen, serve_workers, uvicorn_options

    install_log_redaction()
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = Config.load(data_dir, registry_url=registry_url, database_url=database_url)
    if no_vihf:
        cfg = replace(cfg, require_vihf=False)
        logging.getLogger("dmp.security").warning(
            "!!! --no-vihf: XDS requests are processed WITHOUT VIHF verification: anyone can read and write "
            "every dossier. Development only, never in production. !!!")
    if no_consent:
        cfg = replace(cfg, require_consent=False)
        logging.getLogger("dmp.consent").warning(
            "!!! --no-consent: the DMP consent rules are NOT applied: any authenticated professional reads and "
            "writes every dossier. Benchmarks only, never in production. !!!")
    if tls:
        missing = [k for k in ("tls_cert", "tls_key", "tls_client_ca") if not getattr(cfg, k)]
        if missing:
            raise click.UsageError(f"--tls needs {', '.join(missing)} in {data_dir / 'config.json'} "
                                   "(`dmp init` sets them up with the demo PKI)")
    elif not _is_loopback(host) and not allow_plain_http:
        raise click.UsageError(f"refusing plain HTTP on {host}: use --tls, or --allow-plain-http if a "
                               "TLS-terminating proxy is in front")
    try:
        notification_channels(cfg)   # an incomplete setting: said once, before any worker starts
    except NotificationConfigError as exc:
        raise click.UsageError(f"{exc} ({data_dir / 'config.json'})") from None
    if workers == 1:
        uvicorn.run(frozen(create_app(cfg)), **uvicorn_options(cfg, host, port, log_level, tls))
        return
    # The process that was started (same PID) supervises the workers it forks; crash recovery runs once,
    # before any worker accepts requests (server/_supervisor.py).
    sys.exit(serve_workers(cfg, host, port, log_level, tls, workers))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


main.add_command(patient)
main.add_command(history)


# --- test PKI ----------------------------------------------------------------------------------------------

PKI_DIR = click.option("--dir", "pki_dir", type=click.Path(path_type=Path), required=True,
                       help="Directory of the test PKI (PEM files).")


def _open_pki(pki_dir: Path) -> TestPki:
    try:
        return TestPki.load(pki_dir)
    except FileNotFoundError:
        click.echo(f"error: no test PKI in {pki_dir}; run `dmp pki init --dir {pki_dir}` first", err=True)
        sys.exit(2)


@main.group("pki")
def pki_group() -> None:
    """Test PKI shaped like IGC-Santé (root, CA PERSONNES, CA ORGANISATIONS): for tests and demos only."""


@pki_group.command("init")
@PKI_DIR
def pki_init(pki_dir: Path) -> None:
    """Create the CA hierarchy, its CRLs and a TLS server certificate for localhost/127.0.0.1."""
    click.echo(TEST_PKI_WARNING)
    try:
        test_pki = TestPki.create(pki_dir)
    except FileExistsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    server = test_pki.issue_server(("localhost", "127.0.0.1"))
    click.echo(f"trust anchor: {pki_dir / 'trust-anchors.pem'}")
    click.echo(f"intermediates: {pki_dir / 'intermediates.pem'}")
    crls = ", ".join(str(pki_dir / f"{name}.crl.pem") for name in ("root", "ca-personnes", "ca-organisations"))
    click.echo(f"CRLs: {crls}")
    click.echo(f"server certificate: {server.certificate_path} (key {server.key_path})")


@pki_group.group("issue")
@PKI_DIR
@click.option("--days", type=int, default=3 * 365, show_default=True, help="Validity of the certificates.")
@click.pass_context
def pki_issue(ctx: click.Context, pki_dir: Path, days: int) -> None:
    """Issue end-entity certificates (PEM certificate + unencrypted key)."""
    click.echo(TEST_PKI_WARNING)
    ctx.obj = (_open_pki(pki_dir), days)


@pki_issue.command("ps")
@click.option("--rpps", help="RPPS number (11 digits, Luhn): IdNat_PS = 8 + RPPS.")
@click.option("--adeli", help="ADELI number (9 digits): IdNat_PS = 0 + ADELI.")
@click.option("--family-name", required=True)
@click.option("--given-name", required=True)
@click.option("--profession", default="10", show_default=True, help="TRE_G15 code (10 médecin, 21 pharmacien...).")
@click.option("--specialty", help="TRE_R01 code, e.g. SM26 (médecine générale).")
@click.pass_obj
def pki_issue_ps(obj: tuple[TestPki, int], rpps: str | None, adeli: str | None, family_name: str,
                 given_name: str, profession: str, specialty: str | None) -> None:
    """A CPS-like card: signature certificate (signs VIHFs) and authentication certificate (TLS client)."""
    test_pki, days = obj
    if (rpps is None) == (adeli is None):
        raise click.UsageError("give exactly one of --rpps and --adeli")
    try:
        ps = (PsIdentity.from_rpps(rpps, family_name, given_name, profession, specialty) if rpps is not None
              else PsIdentity.from_adeli(adeli or "", family_name, given_name, profession, specialty))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    card = test_pki.issue_ps(ps, days=days)
    for cred in (card.signature, card.authentication):
        click.echo(f"{cred.certificate_path} (key {cred.key_path})")


@pki_issue.command("structure")
@click.option("--finess", help="FINESS (9 characters): Struct_IdNat = 1 + FINESS.")
@click.option("--siret", help="SIRET (14 digits): Struct_IdNat = 3 + SIRET.")
@click.option("--name", "raison_sociale", required=True, help="Raison sociale (O).")
@click.option("--service", default="SERVICE DMP", show_default=True, help="Service name (CN).")
@click.option("--department", default="Paris (75)", show_default=True, help="Département (ST).")
@click.pass_obj
def pki_issue_structure(obj: tuple[TestPki, int], finess: str | None, siret: str | None, raison_sociale: str,
                        service: str, department: str) -> None:
    """A structure: seal certificate (signs indirect-mode VIHFs) and authentication certificate."""
    test_pki, days = obj
    if (finess is None) == (siret is None):
        raise click.UsageError("give exactly one of --finess and --siret")
    try:
        structure = (StructureIdentity.from_finess(finess, raison_sociale, service, department)
                     if finess is not None
                     else StructureIdentity.from_siret(siret or "", raison_sociale, service, department))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    creds = test_pki.issue_structure(structure, days=days)
    for cred in (creds.seal, creds.authentication):
        click.echo(f"{cred.certificate_path} (key {cred.key_path})")


@pki_issue.command("server")
@click.option("--host", "hosts", multiple=True, help="DNS name or IP address (repeatable).")
@click.pass_obj
def pki_issue_server(obj: tuple[TestPki, int], hosts: tuple[str, ...]) -> None:
    """A TLS server certificate (default: localhost and 127.0.0.1)."""
    test_pki, days = obj
    cred = test_pki.issue_server(hosts or ("localhost", "127.0.0.1"), days=days)
    click.echo(f"{cred.certificate_path} (key {cred.key_path})")


@pki_group.command("revoke")
@PKI_DIR
@click.option("--cert", "cert_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
def pki_revoke(pki_dir: Path, cert_path: Path) -> None:
    """Revoke a certificate of this test PKI (its issuer's CRL is reissued)."""
    from cryptography import x509

    click.echo(TEST_PKI_WARNING)
    test_pki = _open_pki(pki_dir)
    try:
        test_pki.revoke(x509.load_pem_x509_certificate(cert_path.read_bytes()))
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"revoked {cert_path}")


@pki_group.command("crl")
@PKI_DIR
def pki_crl(pki_dir: Path) -> None:
    """Reissue every CRL (they are valid for 30 days)."""
    click.echo(TEST_PKI_WARNING)
    _open_pki(pki_dir).refresh_crls()
    click.echo("CRLs reissued")


if __name__ == "__main__":
    main()
