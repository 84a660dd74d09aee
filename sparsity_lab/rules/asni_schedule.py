"""ASNI's sigmoid sparsity schedule (docs/methods.md §4).

Cumulative target sparsity (percent of prunable weights that are zero) after epoch t:
s(t) = S_max · σ((t − τ·T)/κ), σ(x) = 1/(1 + e^{−x}). Each epoch removes p_t = 100·(s(t) − s_prev)/(100 − s_prev)
percent of the surviving weights by one global magnitude threshold; :func:`asni_prune_count` gives the exact
number so the realised zero count is round(s(t)·n/100) at every epoch (no accumulated rounding drift).
"""

from __future__ import annotations

import math


def _check_schedule(s_max: float, kappa: float, total_epochs: int, tau: float) -> None:
    if not 0 <= s_max <= 100:
        raise ValueError(f"s_max={s_max!r} is invalid; it is a percentage in [0, 100]")
    if not kappa > 0:
        raise ValueError(f"kappa={kappa!r} is invalid; it must be > 0")
    if not (isinstance(total_epochs, int) and total_epochs > 0):
        raise ValueError(f"total_epochs={total_epochs!r} is invalid; it must be an int > 0")
    if not 0 <= tau <= 1:
        raise ValueError(f"tau={tau!r} is invalid; it must be in [0, 1]")


def asni_target_sparsity(t: float, *, s_max: float, kappa: float, total_epochs: int, tau: float = 0.5) -> float:
    """s(t) = S_max·σ((t − τ·T)/κ) in percent."""
    _check_schedule(s_max, kappa, total_epochs, tau)
    x = (t - tau * total_epochs) / kappa
    sig = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
    return s_max * sig


def asni_epoch_fraction(s_t: float, s_prev: float) -> float:
    """p_t = 100·(s_t − s_prev)/(100 − s_prev): percent of the *surviving* weights to remove this epoch."""
    if not 0 <= s_prev < 100:
        raise ValueError(f"s_prev={s_prev!r} is invalid; it must be in [0, 100)")
    return 100.0 * (s_t - s_prev) / (100.0 - s_prev)


def asni_prune_count(t: float, *, n_total: int, n_zero_now: int, s_max: float, kappa: float,
                     total_epochs: int, tau: float = 0.5) -> int:
    """Surviving weights to remove at epoch t so that round(s(t)·n_total/100) are pruned afterwards.

    Never negative (pruning is permanent) and never the last survivor (at least one weight stays)."""
    if not 0 <= n_zero_now <= n_total:
        raise ValueError(f"n_zero_now={n_zero_now!r} must be in [0, n_total={n_total}]")
    target = round(asni_target_sparsity(t, s_max=s_max, kappa=kappa, total_epochs=total_epochs, tau=tau)
                   * n_total / 100.0)
    return max(0, min(target, n_total - 1) - n_zero_now)
