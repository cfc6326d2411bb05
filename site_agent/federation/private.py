"""DP-SGD for a site's local steps inside a federated run: one accountant for the whole run.

The site decides: ``training.dp`` in its own ``site.yaml`` (the same block as for
``site-agent train``), because the guarantee protects this site's images and only the site can
be held to it; the hub cannot switch it off. The hub only sends what the site needs to plan:
``dp-model`` (the run's model has GroupNorm in place of BatchNorm, built alike at the hub and at
every site) and ``num-rounds``.

Privacy composes over rounds, so the noise is calibrated once, in the site's first round, for
all the run's planned steps (``local-epochs × num-rounds`` epochs), and the accountant's history
is kept in the ClientApp's context state (Flower keeps ``context.state`` per run on the
SuperNode). Every round goes on counting from that history; before every step the budget guard
asks whether one more step would exceed the budget and stops the round where it would. A round
that cannot take a single step is refused with an error reply (the hub drops the site with the
reason). The reply carries the spent ε, δ and the plan as the ConfigRecord ``privacy``
(:data:`specialist.federation.wire.PRIVACY_RECORD`): aggregate numbers only.
"""

from __future__ import annotations

import json

from flwr.app import ConfigRecord, Context

from gsco_common.errors import FederationError
from specialist.training.config import DPConfig
from specialist.training.dp import BudgetGuard, DPPlan, plan_dp

STATE_RECORD = "dp-sgd"
"""The ConfigRecord in ``context.state`` holding the run's plan and accountant history (JSON)."""


def run_guard(
    context: Context, options: DPConfig, num_images: int, batch_size: int, epochs: int
) -> BudgetGuard:
    """The run's budget guard: planned in the first round for ``epochs`` epochs in all, else restored."""
    record = context.state.config_records.get(STATE_RECORD)
    if record is None:
        return BudgetGuard(options, plan_dp(options, num_images, batch_size, epochs))
    saved = json.loads(str(record["state"]))
    guard = BudgetGuard(options, DPPlan.from_dict(saved["plan"]))
    guard.load_state_dict(saved["accountant"])
    return guard


def require_budget(guard: BudgetGuard) -> None:
    """Refuse the round when the budget allows not even one more step."""
    if not guard.can_step():
        raise FederationError(
            f"this site's DP-SGD budget is spent (epsilon {guard.spent():.3g} of "
            f"{guard.options.epsilon:g} at delta {guard.options.delta:g} after {guard.steps} steps): "
            "it takes part in no further rounds of this run",
            hint="raise training.dp.epsilon in site.yaml for the next run, or plan fewer rounds",
        )


def save_guard(context: Context, guard: BudgetGuard) -> None:
    """Keep the plan and the accountant's history for the run's next round."""
    state = {"plan": guard.plan.to_dict(), "accountant": guard.state_dict()}
    context.state[STATE_RECORD] = ConfigRecord({"state": json.dumps(state)})


def reply_record(guard: BudgetGuard) -> ConfigRecord:
    """What the hub learns: the guard's report (spent ε at its δ, the plan, the budget's state).

    All of it but the notion, which the hub decides for the federated card; Flower's record
    names are the report's keys with hyphens (``epsilon_budget`` travels as ``epsilon-budget``).
    """
    report = {key: value for key, value in guard.report().items() if key != "notion"}
    return ConfigRecord({key.replace("_", "-"): value for key, value in report.items()})
