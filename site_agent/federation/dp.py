"""Optional client-side clipping for differentially private federated training.

Flower's "DP with client-side fixed clipping": each site clips its model update to the norm the
hub's ``DifferentialPrivacyClientSideFixedClipping`` strategy wrapper sends (``clipping_norm``),
and the hub adds Gaussian noise of ``noise_multiplier * clipping_norm / sites`` to the average.
The clipping itself is Flower's ``fixedclipping_mod``; this mod applies it only to training
messages of DP runs, so the same ClientApp serves runs with and without DP.
"""

from __future__ import annotations

from flwr.app import Context, Message, MessageType
from flwr.clientapp.mod import fixedclipping_mod

from specialist.federation.flower import KEY_CLIPPING_NORM, ClientAppCallable


def optional_clipping_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Clip the update with :func:`fixedclipping_mod` when the hub asked for DP, else pass through."""
    if msg.metadata.message_type == MessageType.TRAIN and any(
        KEY_CLIPPING_NORM in record for record in msg.content.config_records.values()
    ):
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)
