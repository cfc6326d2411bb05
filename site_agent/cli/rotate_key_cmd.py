"""``site-agent rotate-key SITE_DIR``: a new bundle-signing key; the old one is kept aside."""

from __future__ import annotations

from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from gsco_common.keys import passphrase_from_env_or_prompt
from site_agent.signing_key import rotate_signing_key


@handle_errors
def rotate_key(
    site_dir: Path = typer.Argument(..., help="Site folder (with keys/site.key)."),
    json_output: JsonFlag = False,
) -> None:
    """Replace keys/site.key and keys/site.pub by a new pair; the old pair moves to keys/retired/.

    Send the new keys/site.pub to the central team (`gsco-registry sites rotate NAME
    --public-key site.pub`); until then the registry refuses bundles signed with the new key.
    """
    rotation = rotate_signing_key(site_dir, passphrase_from_env_or_prompt(confirm=True))
    if json_output:
        print_json({"old_fingerprint": rotation.old_fingerprint, "new_fingerprint": rotation.new_fingerprint})
        return
    console.print(f"new signing key: {rotation.new_fingerprint}", highlight=False)
    console.print(f"retired: {rotation.old_fingerprint} (keys/retired/)", highlight=False)
    console.print(
        "next: send keys/site.pub to the central team (gsco-registry sites rotate)", highlight=False
    )
