"""Certificates, SuperNode keys and the site's app allow-list, with Flower's own loaders."""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from gsco_common.errors import ConfigError, FederationError, KeyMaterialError
from hub.federation.certs import create_certificates
from hub.federation.orchestrate import app_dir
from hub.federation.progress import ProgressReader, ProgressWriter
from site_agent.federation.approval import ApprovalStore, approvals_path, fab_hash_of
from site_agent.federation.node_keys import generate_node_keys, node_key_paths
from specialist.federation.flower import build_fab_from_disk, try_load_public_key


def test_certificates_chain_to_the_ca_and_name_the_hosts(tmp_path: Path) -> None:
    paths = create_certificates(tmp_path / "certs", ["hub.example.org", "10.0.0.7"])
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "hub.example.org" in names.get_values_for_type(x509.DNSName)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("10.0.0.7") in names.get_values_for_type(x509.IPAddress)
    for key in (paths.ca_key, paths.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(KeyMaterialError, match="refusing to overwrite"):
        create_certificates(tmp_path / "certs")


def test_supernode_keys_load_with_flowers_own_readers(tmp_path: Path) -> None:
    found = generate_node_keys(tmp_path)
    private, public = node_key_paths(tmp_path)
    assert found.startswith("sha256:")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert isinstance(load_ssh_private_key(private.read_bytes(), None), ec.EllipticCurvePrivateKey)
    assert try_load_public_key(public).startswith(b"-----BEGIN PUBLIC KEY-----")
    with pytest.raises(KeyMaterialError, match="refusing to overwrite"):
        generate_node_keys(tmp_path)


def test_app_hash_is_the_hash_flower_sends(tmp_path: Path) -> None:
    folder_hash, app_id, version = fab_hash_of(app_dir())
    fab = tmp_path / "app.fab"
    fab.write_bytes(build_fab_from_disk(app_dir()))
    assert folder_hash == hashlib.sha256(fab.read_bytes()).hexdigest()
    assert fab_hash_of(fab) == (folder_hash, app_id, version)
    assert app_id == "gsco/gsco-federated-specialist"


def test_any_change_to_the_app_changes_its_hash(tmp_path: Path) -> None:
    changed = tmp_path / "app"
    shutil.copytree(app_dir(), changed)
    text = (changed / "pyproject.toml").read_text()
    (changed / "pyproject.toml").write_text(text.replace("min-count = 10", "min-count = 1"))
    assert fab_hash_of(changed)[0] != fab_hash_of(app_dir())[0]


def test_allow_list_approve_revoke_and_damage(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path)
    digest = "ab" * 32
    assert not store.is_approved(digest)
    store.approve(digest.upper(), "gsco/app", "1.0.0")
    assert store.is_approved(digest)
    assert store.revoke(digest) and not store.is_approved(digest)
    with pytest.raises(ConfigError, match="64 hexadecimal"):
        store.approve("not-a-hash")
    approvals_path(tmp_path).write_text("{broken")
    with pytest.raises(FederationError, match="damaged"):
        store.is_approved(digest)


def test_progress_reader_returns_only_complete_lines(tmp_path: Path) -> None:
    writer = ProgressWriter(tmp_path)
    reader = ProgressReader(tmp_path)
    assert reader.new_events() == []
    writer.write("round", round=1, loss=float("nan"))
    with writer.path.open("a") as handle:
        handle.write('{"event": "half')
    events = reader.new_events()
    assert [event["event"] for event in events] == ["round"]
    assert events[0]["loss"] is None
    with writer.path.open("a") as handle:
        handle.write('"}\n')
    assert [event["event"] for event in reader.new_events()] == ["half"]
