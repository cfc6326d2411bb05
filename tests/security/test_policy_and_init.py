"""Attacks on the approval machinery itself: a policy that switches signatures off, a half init."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gsco_common.errors import ConfigError
from registry.cli.main import app
from registry.policy.policy import load_policy

runner = CliRunner()


@pytest.mark.parametrize("check", ["site_signature", "site_key_active"])
def test_policy_cannot_switch_off_signature_checks(tmp_path: Path, check: str) -> None:
    policy = tmp_path / "lax.yaml"
    policy.write_text(f"checks:\n  {check}: false\n  metric_floor: false\n")
    with pytest.raises(ConfigError) as refused:
        load_policy(policy)
    assert refused.value.message == (
        f"policy file lax.yaml is invalid: {check} cannot be switched off: "
        "approvals always check the site signature"
    )


def test_policy_may_still_tighten_and_skip_other_checks(tmp_path: Path) -> None:
    policy = tmp_path / "strict.yaml"
    policy.write_text("checks:\n  metric_floor: false\n  site_signature: true\nmetric_floor:\n  auc: 0.9\n")
    loaded = load_policy(policy)
    assert loaded.enabled("site_signature") and not loaded.enabled("metric_floor")


def test_init_failing_half_way_leaves_no_database_without_a_key(tmp_path: Path) -> None:
    home = tmp_path / "central"
    failed = runner.invoke(app, ["--home", str(home), "init"], env={"GSCO_KEY_PASSPHRASE": "short"})
    assert failed.exit_code == 5 and "at least 8 characters" in failed.stderr
    assert not home.exists() or not [p.name for p in home.rglob("*.db")]
    resumed = runner.invoke(app, ["--home", str(home), "init"], env={"GSCO_KEY_PASSPHRASE": "long-enough-1"})
    assert resumed.exit_code == 0, resumed.output
    assert (home / "keys" / "approval.key").is_file()
    verified = runner.invoke(app, ["--home", str(home), "audit", "verify"])
    assert verified.exit_code == 0, verified.output
