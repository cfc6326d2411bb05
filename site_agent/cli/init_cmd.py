"""``site-agent init``: create a site folder with a documented site.yaml and the site signing key."""

from __future__ import annotations

from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, handle_errors, print_json
from gsco_common.errors import ConfigError, KeyMaterialError
from gsco_common.keys import generate_key_pair, passphrase_from_env_or_prompt
from site_agent.config import render_site_template, site_file, site_key_paths


@handle_errors
def init(
    site_dir: Path = typer.Argument(..., help="Site folder to create (site.yaml, keys/, runs/)."),
    name: str = typer.Option(..., "--name", help="Name of this site as shown to the central team."),
    task: str = typer.Option(
        ..., "--task", help="Task id shared by all sites of the task, e.g. pneumonia-cxr."
    ),
    labels: str = typer.Option(
        ..., "--labels", help="Ordered, comma-separated label names, e.g. normal,pneumonia."
    ),
    modality: str = typer.Option(..., "--modality", help="Imaging modality in plain words."),
    json_output: JsonFlag = False,
) -> None:
    """Write SITE_DIR/site.yaml and the site's EC P-256 key pair (keys/site.key, keys/site.pub).

    The private key is encrypted with GSCO_KEY_PASSPHRASE (asked for when unset) and never
    overwritten: losing it orphans every bundle the site signed.
    """
    if site_dir.exists() and not site_dir.is_dir():
        raise ConfigError("SITE_DIR exists and is not a folder", hint="pass a new or existing folder")
    private_key, public_key = site_key_paths(site_dir)
    if private_key.exists() or public_key.exists():
        raise KeyMaterialError(
            "this site folder already has a signing key; refusing to overwrite it",
            hint="keep using it, or move keys/ away yourself if you really mean to rotate the key",
        )
    if site_file(site_dir).exists():
        raise ConfigError(
            "this site folder already has a site.yaml; refusing to overwrite it", hint="edit it instead"
        )
    text = render_site_template(name, task, [label.strip() for label in labels.split(",")], modality)
    passphrase = passphrase_from_env_or_prompt(confirm=True)
    try:
        site_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create SITE_DIR ({type(exc).__name__})", hint="check the path") from None
    fingerprint = generate_key_pair(private_key, public_key, passphrase)
    site_file(site_dir).write_text(text, encoding="utf-8")
    if json_output:
        print_json(
            {"site_dir": str(site_dir), "site_yaml": str(site_file(site_dir)), "fingerprint": fingerprint}
        )
        return
    console.print(f"site folder ready: {site_dir}", highlight=False, soft_wrap=True)
    console.print(f"public key fingerprint: {fingerprint}", highlight=False, soft_wrap=True)
    console.print(
        "next: edit site.yaml (data, intended use), then `site-agent train --site ...`", highlight=False
    )
