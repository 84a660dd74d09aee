"""The one-shot contrasts of ASNI's figure 9 as runs (docs/methods.md §4, docs/figures.md item 9).

``oneshot_global`` / ``oneshot_layer``: the dense run's final weights pruned once, without training, by
exact-count magnitude pruning to the overall sparsity S of the ASNI-I network of the same seed: globally
(keep exactly ASNI-I's survivor count) or layer by layer (prune round(S · n_ℓ) of every layer). The run
stores the pruned network as its ``final`` artifact (``model.*`` = the dense weights, ``mask.*``) and,
per layer, the survivor count, c⁻ / c⁺ (means of the negative / positive survivors) and θ (the largest
pruned magnitude: of the whole network for global pruning, of the layer for layer-wise pruning).
"""

from __future__ import annotations

import math

import torch

from sparsity_lab.config.configs import AsniConfig
from sparsity_lab.experiments.records import Records
from sparsity_lab.masks import MaskSet
from sparsity_lab.rules.prune import magnitude_prune
from sparsity_lab.store import ResultsStore

__all__ = ["prune_dense_once"]


def _final(store: ResultsStore, cfg: AsniConfig) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    final = store.load_final(cfg.run_id)
    if final is None:
        raise RuntimeError(f"ASNI variant needs the finished {cfg.variant} run {cfg.run_id}")
    return final


def prune_dense_once(cfg: AsniConfig, store: ResultsStore) -> int:
    """Prune the dense run's final weights to ASNI-I's sparsity (``cfg.variant``'s scope); trains nothing."""
    asni, dense = cfg.dependencies()
    _, asni_masks = _final(store, asni)
    dense_weights, _ = _final(store, dense)
    weights = {k: dense_weights[k].float() for k in asni_masks}
    full = MaskSet({k: torch.ones_like(w, dtype=torch.bool) for k, w in weights.items()})
    total = sum(w.numel() for w in weights.values())
    kept = sum(int(m.sum()) for m in asni_masks.values())
    if cfg.variant == "oneshot_global":
        masks = magnitude_prune(weights, full, "global", {"all": total - kept})
    else:
        fraction = 1 - kept / total
        masks = magnitude_prune(weights, full, "layer", {k: int(round(fraction * w.numel())) for k, w in weights.items()})
    store.save_final(cfg.run_id, dense_weights, dict(masks.items()))
    largest = {k: w[~masks[k]].abs().max().item() if (~masks[k]).any() else math.nan for k, w in weights.items()}
    overall = max((v for v in largest.values() if math.isfinite(v)), default=math.nan)
    rec = Records()
    t = cfg.train.epochs - 1
    for name, w in weights.items():
        alive = w[masks[name]].double()
        rec.add(t, "final", "surviving", int(masks[name].sum()), scope="layer", group=name)
        rec.add(t, "final", "c_minus", alive[alive < 0].mean().item() if (alive < 0).any() else math.nan,
                scope="layer", group=name)
        rec.add(t, "final", "c_plus", alive[alive > 0].mean().item() if (alive > 0).any() else math.nan,
                scope="layer", group=name)
        rec.add(t, "final", "threshold", overall if cfg.variant == "oneshot_global" else largest[name],
                scope="layer", group=name)
    rec.add(t, "final", "sparsity", 100.0 * (1 - kept / total), scope="global")
    store.save_step(cfg.run_id, 0, rec.frame())
    return 0
