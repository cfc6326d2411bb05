"""`gsco-registry` refusing what a red-team pass slipped past it or crashed it with.

A card with a key given twice, a trust state edited with SQL behind `verify NAME VERSION`, a
lost approval key replaced by `init`, and bad settings or paths: each is a one-line error with its
documented exit code, never a traceback or a silent success.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from gsco_common.errors import CardError
from gsco_common.keys import fingerprint
from registry.bundle.layout import SITE_SIG
from registry.bundle.signing import sign_bundle
from registry.cli.main import app
from registry.config import RegistryConfig
from registry.service import Registry
from tests.registry.bundles import card_for, make_bundle
from tests.registry.cli_home import cli, init_home, runner
from tests.registry.conftest import LABELS, SiteKey

HIDDEN = '"intended_use": "Patient Jane Roe, MRN 99887766, jane.roe@stmarys.org, /home/jroe/pacs/x.dcm", '


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, site_keys: dict[str, SiteKey]) -> Path:
    return init_home(tmp_path_factory.mktemp("refusals-home"), {"site-a": site_keys["a"].public_path})


def _write_card_with_a_hidden_value(bundle: Path, key: SiteKey, backbone: str) -> None:
    """card.json with ``intended_use`` given twice (the first one identifying), signed by the site."""
    text = json.dumps(card_for(LABELS, fingerprint(key.private.public_key()), backbone=backbone))
    (bundle / "card.json").write_text(text.replace('"intended_use": ', HIDDEN + '"intended_use": ', 1))
    sign_bundle(bundle, key.private, bundle / SITE_SIG)


def test_a_card_giving_a_key_twice_is_refused_at_publish(
    home: Path, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, backbone="dup-net")
    _write_card_with_a_hidden_value(bundle, site_keys["a"], "dup-net")
    with Registry.open(RegistryConfig.resolve(home=home)) as registry:
        with pytest.raises(CardError, match="gives a key twice"):
            registry.publish(bundle)
        assert not registry.versions(task="pneumonia")


def test_a_card_giving_a_key_twice_in_the_store_is_refused_at_approve_and_verify(
    home: Path, site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "b", site_keys["a"].private, LABELS, backbone="swap-net")
    with Registry.open(RegistryConfig.resolve(home=home)) as registry:
        published = registry.publish(bundle)
    (stored,) = [p.parent for p in (home / "artifacts").rglob("card.json") if "swap-net" in p.read_text()]
    _write_card_with_a_hidden_value(stored, site_keys["a"], "swap-net")
    refused = cli(home, "approve", published.name, published.version, "--reviewer", "dr-x")
    assert refused.exit_code == 10, refused.output
    assert "  - anonymization: card.json gives a key twice in one object" in refused.stderr
    assert "Jane" not in refused.output
    verified = cli(home, "verify", published.name, published.version, "--json")
    assert verified.exit_code == 6
    assert (
        json.loads(verified.stdout)["checks"]["site_signature"] == "card.json gives a key twice in one object"
    )


def test_verify_of_one_version_refuses_a_site_unrevoked_with_sql(
    site_keys: dict[str, SiteKey], tmp_path: Path
) -> None:
    home = init_home(tmp_path / "home", {"site-p": site_keys["b"].public_path})
    bundle = make_bundle(tmp_path / "b", site_keys["b"].private, LABELS, backbone="p-net")
    with Registry.open(RegistryConfig.resolve(home=home)) as registry:
        published = registry.publish(bundle)
        registry.approve(published.name, published.version, reviewer="dr-x")
    assert cli(home, "verify", published.name, published.version).exit_code == 0
    assert cli(home, "sites", "revoke", "site-p", "--reason", "key leaked").exit_code == 0
    with sqlite3.connect(home / "registry.db") as db:
        db.execute("UPDATE gsco_sites SET status = 'active' WHERE name = 'site-p'")
    result = cli(home, "verify", published.name, published.version)
    assert result.exit_code == 14, result.output
    assert result.stderr.splitlines()[0] == (
        "error[GSCO-560]: the registry's trust state fails its audit (1 problem(s)): "
        "site 'site-p': key or status in the sites table differ from the audit log"
    )


def test_init_creates_the_key_once_and_keeps_it(tmp_path: Path) -> None:
    first = cli(tmp_path, "init", "--json")
    assert first.exit_code == 0, first.output
    again = cli(tmp_path, "init", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(first.stdout)["approval_key_created"] is True
    assert json.loads(again.stdout)["approval_key_created"] is False
    assert (
        json.loads(again.stdout)["approval_key_fingerprint"]
        == json.loads(first.stdout)["approval_key_fingerprint"]
    )


def test_init_refuses_to_replace_a_lost_approval_key_of_a_registry_with_history(
    home: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "home3"
    shutil.copytree(home, copy)
    shutil.rmtree(copy / "keys")
    result = cli(copy, "init")
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith(
        "error[GSCO-400]: the central approval key (keys/approval.key) is missing"
    )
    assert "restore keys/approval.key" in result.stderr
    assert not (copy / "keys" / "approval.key").exists()


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        ({"GSCO_REGISTRY_RETRIES": "abc"}, [], "invalid registry setting: retries"),
        ({"GSCO_REGISTRY_BACKOFF": "-1"}, [], "invalid registry setting: backoff_s"),
        ({}, ["--tracking-uri", "postgresql://u:p@127.0.0.1:9/db"], "needs the database driver psycopg,"),
        ({"GSCO_TRACKING_URI": "not a uri"}, [], "tracking_uri is neither an MLflow server's URL nor"),
        ({}, ["--tracking-uri", "/some/folder"], "tracking_uri is neither an MLflow server's URL nor"),
        ({}, ["--tracking-uri", "htp://u:p@127.0.0.1:5000", "--db-uri", "sqlite:///x.db"], "tracking_uri is"),
        ({}, ["--tracking-uri", "127.0.0.1:5000"], "tracking_uri is neither an MLflow server's URL nor"),
        ({"GSCO_REGISTRY_DB": "garbage"}, [], "is not a usable database URL (ArgumentError)"),
    ],
)
def test_bad_registry_settings_are_one_line_config_errors(
    home: Path, env: dict[str, str], flags: list[str], message: str
) -> None:
    result = runner.invoke(app, ["--home", str(home), *flags, "tasks", "list"], env=env)
    assert result.exit_code == 2, result.output
    first, hint = result.stderr.splitlines()
    assert first.startswith("error[GSCO-100]: ") and message in first
    assert hint.startswith("hint: ") and "u:p" not in result.output


@pytest.mark.parametrize("target", ["missing/x.json", "."])
def test_trust_export_to_an_unwritable_path_is_one_line(home: Path, tmp_path: Path, target: str) -> None:
    result = cli(home, "trust", "export", str(tmp_path / target))
    assert result.exit_code == 5, result.output
    assert result.stderr.startswith("error[GSCO-400]: cannot write the trust store")


def test_init_on_a_home_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("")
    result = cli(not_a_folder, "init")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error[GSCO-100]: the registry home is not a folder")


def test_trust_export_checks_the_central_key_it_is_given(home: Path, tmp_path: Path) -> None:
    """Before, any file was written into the trust store as the central key, unchecked."""
    out = tmp_path / "trust.json"
    not_a_key = tmp_path / "approval.pub"
    not_a_key.write_text("not a PEM key")
    for key, message in (
        (tmp_path / "absent.pub", "error[GSCO-400]: the --central-key file does not exist"),
        (tmp_path, "error[GSCO-400]: the --central-key file is a folder, not a file"),
        (not_a_key, "error[GSCO-400]: "),
    ):
        result = cli(home, "trust", "export", str(out), "--central-key", str(key))
        assert result.exit_code == 5, result.output
        assert result.stderr.startswith(message)
    assert not out.exists()
