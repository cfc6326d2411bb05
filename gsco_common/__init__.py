"""Plumbing shared by every GSCo package that is not the registry: errors, keys, CLI, telemetry.

It imports nothing of ours and neither torch nor flwr, so any package may import it. Importing it
switches third-party usage telemetry off (:mod:`gsco_common.telemetry`), which is why every GSCo
package imports it first.
"""

from gsco_common import telemetry  # noqa: F401  (first: switches third-party telemetry off)
