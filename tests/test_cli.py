"""The `dmp` command: init, patient create (NIR checked), and config persistence."""

from __future__ import annotations

import json

from click.testing import CliRunner

from server._config import Config
from server.cli import main

PATIENT = "284067512345688^^^&1.2.250.1.213.1.4.10&ISO"


def test_init_then_patient_create(tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["init", "--data", str(tmp_path), "--repository-unique-id", "1.2.250.1.999.7.3"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["repository_unique_id"] == "1.2.250.1.999.7.3"
    assert cfg["database_url"] == f"sqlite:///{tmp_path.resolve() / 'registry.db'}"
    r = runner.invoke(main, ["patient", "create", "--data", str(tmp_path), "--ins", PATIENT])
    assert r.exit_code == 0, r.output
    assert "created" in r.output
    r = runner.invoke(main, ["patient", "create", "--data", str(tmp_path), "--ins", PATIENT + "^NH"])
    assert r.exit_code == 2
    assert "already exists" in r.output
    # A second init keeps the node (same OID) and only migrates.
    assert runner.invoke(main, ["init", "--data", str(tmp_path)]).exit_code == 0
    assert json.loads((tmp_path / "config.json").read_text())["repository_unique_id"] == "1.2.250.1.999.7.3"


def test_patient_create_refuses_bad_nir_and_bad_cx(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--data", str(tmp_path)]).exit_code == 0
    r = runner.invoke(main, ["patient", "create", "--data", str(tmp_path),
                             "--ins", "185054958815780^^^&1.2.250.1.213.1.4.10&ISO"])
    assert r.exit_code == 2
    assert "wrong key: 80, expected 25" in r.output
    r = runner.invoke(main, ["patient", "create", "--data", str(tmp_path), "--ins", "185054958815780"])
    assert r.exit_code == 2
    assert "not a CX identifier" in r.output


def test_patient_create_without_init(tmp_path):
    r = CliRunner().invoke(main, ["patient", "create", "--data", str(tmp_path), "--ins", PATIENT])
    assert r.exit_code != 0
    assert "dmp init" in str(r.exception)


def test_init_metadata_profile(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--data", str(tmp_path)]).exit_code == 0
    assert Config.load(tmp_path).metadata_profile == "dmp"  # the default
    assert runner.invoke(main, ["init", "--data", str(tmp_path), "--metadata-profile", "ihe"]).exit_code == 0
    assert Config.load(tmp_path).metadata_profile == "ihe"
    assert runner.invoke(main, ["init", "--data", str(tmp_path)]).exit_code == 0  # kept on a later init
    assert Config.load(tmp_path).metadata_profile == "ihe"
    bad = runner.invoke(main, ["init", "--data", str(tmp_path), "--metadata-profile", "nist"])
    assert bad.exit_code != 0
    assert "nist" in bad.output
