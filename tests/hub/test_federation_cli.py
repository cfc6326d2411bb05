"""`gsco-hub federation certs | key | register | superlink`: the commands themselves, outputs and refusals.

The library under them is tested in tests/federation/; `federation run` against a real SuperLink
is in tests/federation/test_local_federation.py. Only the `superlink` test starts Flower: the
command as a real process on a free loopback port, insecure and with TLS, stopped by SIGTERM.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from gsco_common.keys import fingerprint, load_public_key
from gsco_common.net import free_port
from gsco_common.processes import pid_alive
from hub.cli.main import app
from hub.federation.flwr_cli import FlowerCli, venv_bin
from hub.federation.processes import descendants

runner = CliRunner()


def test_certs_writes_the_ca_and_a_server_certificate_for_the_named_hosts(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    done = runner.invoke(app, ["federation", "certs", str(out), "--host", "hub.example.org", "--json"])
    assert done.exit_code == 0, done.output
    files = json.loads(done.stdout)
    assert files == {
        "ca": str(out / "ca.pem"),
        "server_cert": str(out / "server.pem"),
        "server_key": str(out / "server.key"),
    }
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate((out / "ca.pem").read_bytes()))
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == ["hub.example.org", "localhost"]


def test_certs_refuses_to_overwrite_without_a_traceback(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    assert runner.invoke(app, ["federation", "certs", str(out)]).exit_code == 0
    before = (out / "ca.pem").read_bytes()
    again = runner.invoke(app, ["federation", "certs", str(out)])
    assert again.exit_code != 0
    assert "refusing to overwrite" in again.output and "Traceback" not in again.output
    assert (out / "ca.pem").read_bytes() == before


def test_key_creates_the_federation_key_once_and_prints_its_fingerprint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = runner.invoke(app, ["--home", str(home), "federation", "key", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    public = home / "keys" / "federation.pub"
    assert report == {"public_key": str(public), "fingerprint": fingerprint(load_public_key(public))}
    again = runner.invoke(app, ["--home", str(home), "federation", "key"])
    assert again.exit_code == 5 and "Traceback" not in again.output
    assert "error[GSCO-400]: a key already exists at federation.key; refusing to overwrite it" in again.output
    assert fingerprint(load_public_key(public)) == report["fingerprint"], "the key was not replaced"


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_register_with_no_superlink_listening_fails_with_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    key = tmp_path / "supernode_key.pub"
    key.write_text("not used: the SuperLink is unreachable")
    done = runner.invoke(
        app,
        ["--home", str(tmp_path / "home"), "federation", "register", str(key)]
        + ["--superlink", f"127.0.0.1:{port}", "--insecure"],
    )
    assert done.exit_code == 12 and "Traceback" not in done.output
    assert "error[GSCO-700]: `flwr supernode register` failed" in done.output
    assert "hint: check that the SuperLink runs and the address and certificates are right" in done.output


@pytest.mark.parametrize("tls", [False, True], ids=["insecure", "tls"])
def test_superlink_listens_answers_flwr_and_stops_cleanly_on_sigterm(tmp_path: Path, tls: bool) -> None:
    home, port = tmp_path / "home", free_port()
    certs = home / "federation" / "certs"
    if tls:
        assert runner.invoke(app, ["federation", "certs", str(certs)]).exit_code == 0
    mode = ["--certs", str(certs)] if tls else ["--insecure"]
    command = [
        venv_bin("gsco-hub"),
        "--home",
        str(home),
        "federation",
        "superlink",
        "--port",
        str(port),
        *mode,
    ]
    hub = subprocess.Popen(  # noqa: S603  (fixed command line, no shell)
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        first = hub.stdout.readline()  # printed once the SuperLink's port accepts connections
        secure = "INSECURE (no TLS, no node auth)" if not tls else "TLS + SuperNode authentication"
        assert first.startswith(f"SuperLink listening on 127.0.0.1:{port}, {secure}; log: "), (
            first + hub.stderr.read() if hub.poll() is not None else first
        )
        assert _accepts(port)
        superlink = descendants([hub.pid])
        assert superlink, "the SuperLink runs as the command's child process"
        flwr = FlowerCli(
            tmp_path / "flwr", f"127.0.0.1:{port}", insecure=not tls, root_certificates=certs / "ca.pem"
        )
        assert flwr.nodes() == []  # the Control API answers over the chosen transport: no site yet
    finally:
        hub.send_signal(signal.SIGTERM)
        out, err = hub.communicate(timeout=60)
    assert hub.returncode == 0, err
    assert "stopping the SuperLink" in out and "Traceback" not in err
    deadline = time.monotonic() + 10
    while [pid for pid in superlink if pid_alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in superlink if pid_alive(pid)] == []
    assert not _accepts(port)
