"""``site-agent publish``: upload ``RUN_DIR/bundle`` to the registry named by site.yaml or a flag.

The registry checks the task and its labels, the site's enrolled key and the signature, and makes
publishing idempotent (the same bundle gives the same version). Unreachable registries are
retried with exponential backoff before a :class:`RegistryUnavailableError`.
"""

from __future__ import annotations

from pathlib import Path

from gsco_common.errors import ExportError
from gsco_common.keys import load_public_key, public_pem
from registry.bundle.layout import SITE_SIG, require_bundle_files
from registry.bundle.signing import verify_bundle
from registry.config import RegistryConfig
from registry.service import PublishResult, Registry
from site_agent.config import SiteConfig, load_site_config, site_key_paths
from site_agent.export.bundle import BUNDLE_DIR

_TRACKING_SCHEMES = ("http://", "https://", "sqlite:", "postgresql", "mysql")


def registry_config(site: SiteConfig, registry: str | None = None) -> RegistryConfig:
    """The registry to publish to.

    ``--registry`` (a tracking URI, or a folder for an embedded home) wins over site.yaml's
    ``registry:`` (environment overrides already applied), which wins over GSCO_HOME.
    """
    if registry is not None:
        if registry.startswith(_TRACKING_SCHEMES):
            return RegistryConfig.resolve(tracking_uri=registry, db_uri=site.registry.db_uri)
        return RegistryConfig.resolve(home=Path(registry.removeprefix("file://")))
    return RegistryConfig.resolve(
        home=site.registry.home, tracking_uri=site.registry.tracking_uri, db_uri=site.registry.db_uri
    )


def publish_run(
    run_dir: Path, *, registry: str | None = None, site_dir: Path | None = None, source: str | None = None
) -> PublishResult:
    """Publish ``run_dir/bundle``; returns the registered model name and version."""
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
