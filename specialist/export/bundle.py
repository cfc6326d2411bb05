"""The one way a bundle is built: stage, export with parity, card, PHI / deny-list scan, sign.

A site's ``site-agent export`` and the hub's federated publication both call
:func:`build_bundle`; they differ only in what they pass (the model and its parity inputs, how
the card is written, the signing key, the identifying strings and the deny list). Everything
happens in a staging folder next to ``target`` that replaces ``target`` only once every check
passed, so a refused bundle leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec

from gsco_common.keys import public_pem
from registry.bundle.card import card_strings, write_card
from registry.bundle.free_text import refuse_identifying_text
from registry.bundle.layout import MODEL_FILE, SITE_SIG
from registry.bundle.signing import sign_bundle, verify_bundle
from specialist.export.onnx_export import ExportResult, export_specialist
from specialist.models.specialist import Specialist

# Builds the card once the model is staged: from the export result and the staged model.onnx
# (a site evaluates the exported model itself there).
CardMaker = Callable[[ExportResult, Path], dict[str, Any]]


def refuse_identifying(
    named: Iterable[tuple[str, str]], forbidden: Iterable[str], deny_list: Sequence[str], *, hint: str
) -> None:
    """Raise :class:`PrivacyError` naming the card fields (never the values) that match.

    A field matches when it holds one of the site's identifiers, a deny-listed string, or free text
    that looks like PHI (a name, a record number, a date, an e-mail, a host name or a path).
    """
    refuse_identifying_text(named, forbidden, deny_list, hint=hint)


def build_bundle(
    target: Path,
    *,
    model: Specialist,
    parity_inputs: np.ndarray,
    make_card: CardMaker,
    key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    forbidden: Iterable[str],
    deny_list: Sequence[str],
    hint: str,
    progress: Callable[[str], None] = lambda _step: None,
) -> tuple[ExportResult, dict[str, Any]]:
    """Write ``target/{model.onnx, card.json, site.sig}``; return the export result and the card.

    ``forbidden`` (data identifiers, this machine's names) and ``deny_list`` are checked against
    every string of the model and of the card; a hit raises :class:`PrivacyError` naming the
    field, with ``hint`` saying where to fix it, and nothing is written. The signature is
    verified with ``public_key`` before the bundle is kept.
    """
    forbidden = list(forbidden)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=target.parent) as tmp:
        staging = Path(tmp) / target.name
        staging.mkdir()
        progress("exporting ONNX")
        exported = export_specialist(
            model, staging / MODEL_FILE, parity_inputs, forbidden=forbidden, deny_list=deny_list
        )
        card = make_card(exported, staging / MODEL_FILE)
        refuse_identifying(card_strings(card), forbidden, deny_list, hint=hint)
        write_card(card, staging)
        progress("signing")
        sign_bundle(staging, key, staging / SITE_SIG)
        verify_bundle(staging, public_pem(public_key), staging / SITE_SIG)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return exported, card
