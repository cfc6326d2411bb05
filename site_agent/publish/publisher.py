"""``site-agent publish``: upload ``RUN_DIR/bundle`` to the registry named by site.yaml or a flag.

The registry checks the task and its labels, the site's enrolled key and the signature, and makes
publishing idempotent (the same bundle gives the same version). Unreachable registries are
retried with exponential backoff before a :class:`RegistryUnavailableError`.
"""

from __future__ import annotations

from pathlib import Path

from gsco_common.errors import ExportError, RegistryError
from gsco_common.keys import load_public_key, public_pem
from registry.bundle.layout import SITE_SIG, require_bundle_files
from registry.bundle.signing import verify_bundle
from registry.config import DB_FILE, TRACKING_SCHEMES, RegistryConfig
from registry.service import PublishResult, Registry
from site_agent.config import SiteConfig, load_site_config, site_key_paths
from site_agent.export.bundle import BUNDLE_DIR
from site_agent.training.run_dir import require_run_folder


def registry_config(site: SiteConfig, registry: str | None = None) -> RegistryConfig:
    """The registry to publish to.

    ``--registry`` (a tracking URI, or a folder for an embedded home) wins over site.yaml's
    ``registry:`` (environment overrides already applied), which wins over GSCO_HOME. An embedded
    home must already hold a registry, and its tables are the ones in it: a ``db_uri`` (meant for
    a tracking server) is not used with it, so that a mistyped server address is refused instead
    of publishing into a new folder of that name with the server's tables.
    """
    if registry is not None and registry.startswith(TRACKING_SCHEMES):
        return RegistryConfig.resolve(tracking_uri=registry, db_uri=site.registry.db_uri)
    if registry is not None:  # a folder: an embedded registry, whatever GSCO_TRACKING_URI says
        home = Path(registry.removeprefix("file://"))
        config = RegistryConfig.resolve(home=home).model_copy(update={"tracking_uri": None})
        named = f"--registry {registry}"
    else:
        config = RegistryConfig.resolve(
            home=site.registry.home, tracking_uri=site.registry.tracking_uri, db_uri=site.registry.db_uri
        )
        named = f"the registry home {config.home}"
    if not config.embedded:
        return config
    if not (config.home / DB_FILE).is_file():
        raise RegistryError(
            f"{named}: no registry there (no {DB_FILE})",
            hint="give the central registry's URL (http://, https://, postgresql://...) with --registry or "
            "site.yaml registry.tracking_uri, or the folder where `gsco-registry init` ran",
        )
    return config.model_copy(update={"db_uri": None})


def publish_run(
    run_dir: Path, *, registry: str | None = None, site_dir: Path | None = None, source: str | None = None
) -> PublishResult:
    """Publish ``run_dir/bundle``; returns the registered model name and version."""
    require_run_folder(run_dir)
    site_dir = site_dir or run_dir.resolve().parent.parent
    site = load_site_config(site_dir)
    bundle = run_dir / BUNDLE_DIR
    if not bundle.is_dir():
        raise ExportError("the run has no bundle yet", hint="run `site-agent export RUN_DIR` first")
    require_bundle_files(bundle)
    _, public_path = site_key_paths(site_dir)
    verify_bundle(bundle, public_pem(load_public_key(public_path)), bundle / SITE_SIG)
    with Registry.open(registry_config(site, registry)) as opened:
        return opened.publish(bundle, source=source)
