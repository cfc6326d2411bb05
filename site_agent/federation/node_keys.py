"""The SuperNode authentication key pair of a site.

With SuperNode authentication on, the hub's SuperLink admits only nodes whose public key the hub
operator registered (``gsco-hub federation register KEY.pub``). The key is separate from the
site's bundle-signing key (``keys/site.key``): Flower needs it unencrypted in OpenSSH format on a
NIST curve, while the signing key stays passphrase-protected. Fingerprints use
:func:`gsco_common.keys.fingerprint`, the form the hub computes from the SuperLink's node list.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gsco_common.keys import fingerprint, write_new_key_pair

NODE_PRIVATE_KEY_FILE = "supernode_key"
NODE_PUBLIC_KEY_FILE = "supernode_key.pub"


def node_key_paths(site_dir: Path) -> tuple[Path, Path]:
    """``(private, public)``: ``SITE_DIR/keys/supernode_key`` and ``supernode_key.pub``."""
    keys = site_dir / "keys"
    return keys / NODE_PRIVATE_KEY_FILE, keys / NODE_PUBLIC_KEY_FILE


def generate_node_keys(site_dir: Path) -> str:
    """Write a new EC P-384 key pair for the SuperNode (private 0600); return its fingerprint.

    Refuses to overwrite: the hub registered the old public key, so a silent rotation would lock
    the site out of the federation.
    """
    private_path, public_path = node_key_paths(site_dir)
    key = ec.generate_private_key(ec.SECP384R1())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    write_new_key_pair(
        private_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ),
        public_path,
        public + b"\n",
        taken="a SuperNode key already exists at keys/{name}; refusing to overwrite it",
        hint="move it away explicitly and register the new public key with the hub",
    )
    return fingerprint(key.public_key())
