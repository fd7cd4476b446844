"""Hyperband's rung decisions (pure): at each rung only the top 1/eta of the trials that reached it go on.

    rungs = spec.early_terminate.rungs()  # min_iter=1, eta=3: [1, 3, 9, 27, ...]
    rung = rung_for(epochs_done, rungs)
    stop = rung is not None and should_stop(val_loss, others_at_rung, goal="minimize", eta=3)

A trial is compared with every other trial that reached the same rung, whether it finished, was stopped or is
still running. Until `eta` other trials have reached a rung there is too little evidence and none is stopped there,
so in a sequential sweep with eta=3 the first three trials always pass the first rung.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nbtrack.sweeps.config import GOALS, SweepConfigError


def rung_for(epoch_count: int, rungs: Sequence[int]) -> int | None:
    """The rung reached when `epoch_count` epochs are done, or None between rungs."""
    return epoch_count if epoch_count in rungs else None


def should_stop(value: float, others: Sequence[float], *, goal: str, eta: float) -> bool:
    """Whether a trial with `value` at a rung is outside the top ceil(n / eta) of the n trials there.

    Args:
        value: this trial's metric at the rung; NaN is the worst value (stopped once there is evidence).
        others: the metric at the same rung of every other trial that reached it; NaN ones count as worst.
        goal: "minimize" or "maximize".
        eta: the fraction kept is 1/eta; with fewer than eta `others` nothing is stopped.
    """
    if goal not in GOALS:
        raise SweepConfigError(f"goal: got {goal!r}; expected 'minimize' or 'maximize'.", field="goal")
    if not eta > 1:
        raise SweepConfigError(f"eta: got {eta!r}; expected a number above 1.", field="eta")
    if len(others) < eta:
        return False
    n = len(others) + 1
    if math.isnan(value):
        return True
    sign = 1.0 if goal == "minimize" else -1.0
    # Ties go to the trial being judged: only strictly better ones push it down.
    ahead = sum(1 for other in others if not math.isnan(other) and sign * other < sign * value)
    keep = math.ceil(n / eta - 1e-9)  # the tolerance keeps 9 / 3 at 3 despite float noise in eta
    return ahead >= keep
