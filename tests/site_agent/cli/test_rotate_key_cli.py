"""`site-agent rotate-key`: a new encrypted 0600 pair; the old pair kept aside, never overwritten."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from typer.testing import CliRunner

from gsco_common.keys import fingerprint, load_private_key, load_public_key
from site_agent.cli.main import app
from tests.site_agent.cli.test_init_cli import ARGS

runner = CliRunner()


def test_rotate_key_retires_the_old_pair_and_writes_a_new_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert runner.invoke(app, ["init", str(site), *ARGS]).exit_code == 0
    private, public = site / "keys" / "site.key", site / "keys" / "site.pub"
    old_fp, old_pem = fingerprint(load_public_key(public)), public.read_bytes()

    result = runner.invoke(app, ["rotate-key", str(site), "--json"])
    assert result.exit_code == 0, result.output
    fps = json.loads(result.stdout)
    new_fp = fingerprint(load_public_key(public))
    assert fps == {"old_fingerprint": old_fp, "new_fingerprint": new_fp} and new_fp != old_fp
    key = load_private_key(private, os.environ["GSCO_KEY_PASSPHRASE"].encode())
    assert fingerprint(key.public_key()) == new_fp and stat.S_IMODE(private.stat().st_mode) == 0o600
    stem = old_fp.removeprefix("sha256:")[:16]
    retired = site / "keys" / "retired"
    assert sorted(p.name for p in retired.iterdir()) == [f"site-{stem}.key", f"site-{stem}.pub"]
    assert (retired / f"site-{stem}.pub").read_bytes() == old_pem
    assert stat.S_IMODE((retired / f"site-{stem}.key").stat().st_mode) == 0o600


def test_rotate_key_refuses_a_folder_without_a_key_and_keeps_it_on_a_bad_passphrase(
    tmp_path: Path,
) -> None:
    empty = runner.invoke(app, ["rotate-key", str(tmp_path / "nothing")])
    assert empty.exit_code == 5 and "no signing key to rotate" in empty.stderr
    site = tmp_path / "site"
    assert runner.invoke(app, ["init", str(site), *ARGS]).exit_code == 0
    before = (site / "keys" / "site.pub").read_bytes()
    short = runner.invoke(app, ["rotate-key", str(site)], env={"GSCO_KEY_PASSPHRASE": "short"})
    assert short.exit_code == 5 and "at least" in short.stderr
    assert (site / "keys" / "site.pub").read_bytes() == before and not (site / "keys" / "retired").exists()
