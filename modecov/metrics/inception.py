"""Inception-style scores with the dataset's exact mode posterior p(k | x) as the classifier:
the Inception score, its normalised form, and the MODE score."""

from __future__ import annotations

import torch
from torch import Tensor

from modecov.data import Dataset
from modecov.metrics.modes import check_samples, kl_nats


def inception(*, fake: Tensor, real: Tensor, data: Dataset) -> dict[str, Tensor]:
    """Inception score, normalised Inception score and MODE score, over all samples.

    With p(k | x) = ``data.posterior(x)``, p(k) = E_x p(k | x) its average over the N
    samples of a seed (every sample, HQ or not) and w the true weights:

    - ``inception_score`` = exp(E_x KL(p(k | x) || p(k))) (Salimans et al. 2016), between 1
      and K.
    - ``inception_score_norm`` = IS / exp(H(w)): about 1 for the dataset's own sampler
      (when its modes are well separated) and 1 / exp(H(w)) for a sampler on one mode.
    - ``mode_score`` = exp(E_x KL(p(k | x) || p(k)) - KL(p(k) || w))
      = IS * exp(-KL(p(k) || w)) (Che et al. 2017): the Inception score penalised for a
      mode marginal away from the true weights, so it is right for imbalanced data. A
      sampler on mode k alone scores w_k (0.22 on mode 0 of ``ring8_imbalanced``, where
      IS = 1); the dataset's own sampler scores about exp(H(w)), like IS. (Writing w in the
      first term, as an earlier version did, makes the weights cancel: that score is
      algebraically the Inception score.)

    Args:
        fake: (S, N, D) generated samples, one set per seed.
        real: (N', D) real samples; ignored, kept so every samples metric shares one
            signature.
        data: the dataset whose posterior classifies samples into its K modes.

    Returns:
        ``inception_score``, ``inception_score_norm``, ``mode_score``, each (S,) float64.

    Example:
        On ring8, a generator that puts every sample on one mode scores IS = 1 and
        ``inception_score_norm`` = 1/8; one that spreads samples evenly over the 8 modes
        scores IS = 8 and ``inception_score_norm`` = 1.
    """
    check_samples(fake, data)
    post = data.posterior(fake).to(torch.float64)
    w = data.weights.to(device=post.device, dtype=torch.float64)
    marginal = post.mean(-2)
    log_is = kl_nats(post, marginal[:, None, :]).mean(-1)
    inception_score = log_is.exp()
    entropy_w = torch.special.entr(w).sum()
    mode_score = (log_is - kl_nats(marginal, w)).exp()
    return {
        "inception_score": inception_score,
        "inception_score_norm": inception_score / entropy_w.exp(),
        "mode_score": mode_score,
    }
