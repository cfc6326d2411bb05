import os
import stat
import subprocess
import sys

import pytest

from gsco_common import keys
from gsco_common.errors import KeyMaterialError


def test_generate_encrypted_key_pair_with_private_mode_and_fingerprint(tmp_path):
    fp = keys.generate_key_pair(tmp_path / "k" / "site.key", tmp_path / "k" / "site.pub", b"passphrase-1")
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 64
    assert stat.S_IMODE((tmp_path / "k" / "site.key").stat().st_mode) == 0o600
    assert b"ENCRYPTED" in (tmp_path / "k" / "site.key").read_bytes()
    private = keys.load_private_key(tmp_path / "k" / "site.key", b"passphrase-1")
    assert keys.fingerprint(private.public_key()) == fp
    assert keys.fingerprint(keys.load_public_key(tmp_path / "k" / "site.pub")) == fp


def test_refuses_to_overwrite_an_existing_key(tmp_path):
    keys.generate_key_pair(tmp_path / "site.key", tmp_path / "site.pub", b"passphrase-1")
    before = (tmp_path / "site.key").read_bytes()
    with pytest.raises(KeyMaterialError, match="refusing to overwrite"):
        keys.generate_key_pair(tmp_path / "site.key", tmp_path / "site.pub", b"passphrase-1")
    assert (tmp_path / "site.key").read_bytes() == before


def test_wrong_passphrase_and_missing_or_bad_keys(tmp_path):
    keys.generate_key_pair(tmp_path / "site.key", tmp_path / "site.pub", b"passphrase-1")
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        keys.load_private_key(tmp_path / "site.key", b"another-pass")
    with pytest.raises(KeyMaterialError, match="not found"):
        keys.load_private_key(tmp_path / "missing.key", b"passphrase-1")
    (tmp_path / "junk.pub").write_text("not a key")
    with pytest.raises(KeyMaterialError, match="not a PEM"):
        keys.load_public_key(tmp_path / "junk.pub")


def test_passphrase_from_env_is_checked(monkeypatch):
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "short")
    with pytest.raises(KeyMaterialError, match="at least"):
        keys.passphrase_from_env_or_prompt(confirm=False)
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "long-enough-pass")
    assert keys.passphrase_from_env_or_prompt(confirm=False) == b"long-enough-pass"
    monkeypatch.delenv(keys.PASSPHRASE_ENV)
    with pytest.raises(KeyMaterialError, match="set GSCO_KEY_PASSPHRASE"):
        keys.passphrase_from_env_or_prompt(confirm=False, prompt=False)


def test_a_signing_key_must_be_the_pair_of_its_public_key(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "passphrase-1")
    fp = keys.generate_key_pair(tmp_path / "site.key", tmp_path / "site.pub", b"passphrase-1")
    keys.generate_key_pair(tmp_path / "other.key", tmp_path / "other.pub", b"passphrase-1")
    assert (
        keys.fingerprint(keys.load_signing_key(tmp_path / "site.key", tmp_path / "site.pub").public_key())
        == fp
    )
    with pytest.raises(KeyMaterialError) as caught:
        keys.load_signing_key(tmp_path / "site.key", tmp_path / "other.pub")
    assert caught.value.message == "site.key and other.pub are not a pair"


@pytest.mark.parametrize("confirm", [False, True])
def test_no_terminal_and_no_passphrase_is_a_key_error(monkeypatch, confirm):
    """systemd units run with stdin closed: getpass's EOFError must not become click's "Aborted."."""

    def closed(prompt: str) -> str:
        raise EOFError

    monkeypatch.delenv(keys.PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(keys.getpass, "getpass", closed)
    with pytest.raises(KeyMaterialError, match="no terminal") as caught:
        keys.passphrase_from_env_or_prompt(confirm=confirm)
    assert caught.value.hint == f"set {keys.PASSPHRASE_ENV}"


def test_an_unreadable_key_file_is_a_key_error(tmp_path, monkeypatch):
    keys.generate_key_pair(tmp_path / "site.key", tmp_path / "site.pub", b"passphrase-1")

    def denied(self) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(tmp_path), "read_bytes", denied)
    with pytest.raises(KeyMaterialError, match="private key site.key cannot be read \\(PermissionError\\)"):
        keys.load_private_key(tmp_path / "site.key", b"passphrase-1")
    with pytest.raises(KeyMaterialError, match="public key site.pub cannot be read"):
        keys.load_public_key(tmp_path / "site.pub")


def test_a_key_pair_that_cannot_be_written_is_a_key_error_and_leaves_no_half(tmp_path):
    (tmp_path / "keys").write_text("a file where the keys folder goes")
    with pytest.raises(KeyMaterialError) as caught:
        keys.generate_key_pair(
            tmp_path / "keys" / "site.key", tmp_path / "keys" / "site.pub", b"passphrase-1"
        )
    assert caught.value.message == f"cannot write the key pair: {tmp_path / 'keys'} (File exists)"
    # the private key written, the public one's folder missing: the private key is removed again
    with pytest.raises(
        KeyMaterialError,
        match=r"^cannot write the key pair: .*/missing/site.pub \(No such file or directory\)",
    ):
        keys.generate_key_pair(tmp_path / "site.key", tmp_path / "missing" / "site.pub", b"passphrase-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]


def test_without_a_terminal_the_error_comes_alone(tmp_path):
    """No GetPassWarning line (which names getpass.py) before the error; no controlling terminal here."""
    env = {k: v for k, v in os.environ.items() if k != keys.PASSPHRASE_ENV}
    code = "from gsco_common.keys import passphrase_from_env_or_prompt as p; p(confirm=False)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        start_new_session=True,  # no controlling terminal, as under systemd
        check=False,
    )
    assert "GetPassWarning" not in result.stderr and "getpass.py" not in result.stderr
    assert "no key passphrase" in result.stderr.splitlines()[-1]
