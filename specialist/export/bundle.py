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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PrivacyScan:
    """What no published string may hold, and where the user fixes a hit (``hint``).

    ``forbidden``: the data's identifiers and this machine's names; ``deny_list``: the strings
    an operator bans (a site's ``export.deny_list``).
    """

    forbidden: tuple[str, ...]
    deny_list: tuple[str, ...]
    hint: str

    def refuse(self, named: Iterable[tuple[str, str]]) -> None:
        """Raise :class:`PrivacyError` naming the card fields (never the values) that match.

        A field matches when it holds a forbidden or deny-listed string, or free text that looks
        like PHI (a name, a record number, a date, an e-mail, a host name or a path).
        """
        refuse_identifying_text(named, self.forbidden, self.deny_list, hint=self.hint)


def build_bundle(
    target: Path,
    *,
    model: Specialist,
    parity_inputs: np.ndarray,
    make_card: CardMaker,
    key: ec.EllipticCurvePrivateKey,
    scan: PrivacyScan,
    progress: Callable[[str], None] = lambda _step: None,
) -> tuple[ExportResult, dict[str, Any]]:
    """Write ``target/{model.onnx, card.json, site.sig}``; return the export result and the card.

    ``scan`` is checked against every string of the model and of the card; a hit raises
    :class:`PrivacyError` naming the field, with the scan's hint saying where to fix it, and
    nothing is written. The signature is verified (with ``key``'s public key) before the bundle is kept.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=target.parent) as tmp:
        staging = Path(tmp) / target.name
        staging.mkdir()
        progress("exporting ONNX")
        exported = export_specialist(
            model, staging / MODEL_FILE, parity_inputs, forbidden=scan.forbidden, deny_list=scan.deny_list
        )
        card = make_card(exported, staging / MODEL_FILE)
        scan.refuse(card_strings(card))
        write_card(card, staging)
        progress("signing")
        sign_bundle(staging, key, staging / SITE_SIG)
        verify_bundle(staging, public_pem(key.public_key()), staging / SITE_SIG)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return exported, card
