"""Estimators by the names used in configs and results keys: the paper's (``uoro.model``) and ours
(``uoro.variants``, not in the paper)."""

from __future__ import annotations

import torch

from uoro.model import RTRL, TBPTT, UORO, Estimator, NoProjectionUORO
from uoro.variants import OUR_VARIANTS, UOROVariants

PAPER_ESTIMATORS = {
    "uoro": {"space": "state", "alpha": "rescaled"},  # Tallec & Ollivier's UORO
    "uoro_no_rho": {"space": "state", "alpha": "one"},  # the same without the rescaling
    "uoro_preact": {"space": "preactivation", "alpha": "rescaled"},  # projection at p = W a
}
ESTIMATOR_KINDS = ("rtrl", "tbptt", *PAPER_ESTIMATORS, "uoro_noproj", *OUR_VARIANTS)


def make_estimator(
    kind: str, generator: torch.Generator | None = None, truncation: int = 1, **our_options
) -> Estimator:
    """``our_options`` (eps, future_decay, ..., forget, shared_trajectory) configure our variants; the
    paper's estimators take only ``eps`` from them."""
    if kind == "rtrl":
        return RTRL()
    if kind == "tbptt":
        return TBPTT(truncation)
    if kind not in ESTIMATOR_KINDS:
        raise ValueError(
            f"unknown estimator '{kind}' (expected one of {', '.join(ESTIMATOR_KINDS)})"
        )
    if generator is None:
        raise ValueError(f"estimator '{kind}' is stochastic and needs a torch.Generator")
    eps = our_options.get("eps", 1e-7)
    if kind in PAPER_ESTIMATORS:
        estimator = UORO(generator, eps=eps, **PAPER_ESTIMATORS[kind])
    elif kind == "uoro_noproj":
        estimator = NoProjectionUORO(generator, eps=eps)
    else:
        estimator = UOROVariants(generator, **{**our_options, **OUR_VARIANTS[kind]})
    estimator.name = kind
    return estimator
