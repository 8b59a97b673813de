"""The ``dmp`` command: node set-up, serving, patient administration."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from registry import PatientError, Registry, Store
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
def init(data_dir: Path, repository_unique_id: str | None, database_url: str | None) -> None:
    """Create a node in DATA, or bring an existing node's database schema up to date."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        cfg = Config.load(data_dir)
    except FileNotFoundError:
        cfg = Config.new(data_dir, repository_unique_id=repository_unique_id, database_url=database_url)
        cfg.save()
    cfg.blob_dir.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.database_url)
    store.migrate()
    store.dispose()
    click.echo(f"node ready in {cfg.data_dir} (repositoryUniqueId {cfg.repository_unique_id})")


@main.command()
@DATA
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--registry-url", help="Register with a remote Document Registry over ITI-42 instead of in-process.")
@click.option("--database-url", help="Override the configured database URL.")
@click.option("--log-level", default="info", show_default=True)
def serve(data_dir: Path, host: str, port: int, registry_url: str | None, database_url: str | None,
          log_level: str) -> None:
    """Serve /xds/registry and /xds/repository (SOAP 1.2), and /health."""
    import uvicorn

    from server._app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = Config.load(data_dir, registry_url=registry_url, database_url=database_url)
    app = create_app(cfg)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=10)


@main.group()
def patient() -> None:
    """Patient dossiers (the registry's identity feed)."""


@patient.command("create")
@DATA
@click.option("--ins", required=True, help="INS as CX, e.g. 'NIR^^^&1.2.250.1.213.1.4.10&ISO'.")
def patient_create(data_dir: Path, ins: str) -> None:
    """Open a dossier so documents can be filed for this patient."""
    cfg = Config.load(data_dir)
    store = Store(cfg.database_url)
    try:
        key = Registry(store).create_patient(ins)
    except PatientError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        store.dispose()
    click.echo(f"patient {key} created")


if __name__ == "__main__":
    main()
