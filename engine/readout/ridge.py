"""Ridge regression readouts for many recorded units at once, the penalty chosen by cross-validation.

Features are z-scored over the training images, so one relative penalty grid suits any
bank: the penalty is ``alpha * n_train`` with ``alpha`` on ``ALPHAS``. One SVD of the
training features gives the fit for every penalty and every unit at once
(``coef = V diag(s / (s^2 + lambda)) U^T y``), which is what makes a refit during a
session cheap. The reported held-out predictions are *nested*: every image is predicted
by a readout fitted without it, whose penalty was chosen by an inner cross-validation
on that readout's own training images, so the held-out r is not flattered by the
penalty choice. Held-out images are predicted with their features clipped to the range of
the readout's training images: a neuron of the bank that no training image drove (a sparse
one, such as a demo neuron that answers only red blobs) has a tiny spread there, its z-scored
weight can be anything, and an image that drives it would otherwise be predicted thousands
of counts away. A readout says nothing about what it never saw. A committee of bootstrap
refits says where the readouts are unsure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.stats.correlation import pearson_r
from compactrig.engine.stats.r2_er import r2_er_rows

ALPHAS = np.logspace(-4, 2, 13)
"""Relative penalties tried: ``lambda = alpha * n_train`` on z-scored features."""
FOLDS = 5
MIN_IMAGES = 2 * FOLDS
"""Fewer images than this leave nothing to cross-validate with."""


@dataclass(frozen=True)
class TrialSums:
    """Per image (rows) and unit (columns): number of responses, their sum and sum of squares (as
    ``compactrig.engine.stats.response_sums.PerImageSums`` keeps them). The readouts share one design matrix, so
    they are fitted on the images every unit answered (``answered``)."""

    counts: np.ndarray
    sums: np.ndarray
    sumsq: np.ndarray

    def __post_init__(self) -> None:
        if np.shape(self.counts) != np.shape(self.sums) or np.shape(self.sums) != np.shape(self.sumsq):
            raise ValueError(f"counts, sums and sums of squares must be (images, units) alike, not "
                             f"{np.shape(self.counts)}, {np.shape(self.sums)}, {np.shape(self.sumsq)}")

    @property
    def means(self) -> np.ndarray:
        return self.sums / np.maximum(self.counts, 1)

    @property
    def answered(self) -> np.ndarray:
        """Boolean per image: every unit has a response to it."""
        return np.asarray((self.counts > 0).all(axis=1))


@dataclass(frozen=True)
class RidgeFit:
    """Every unit's readout: ``response = features @ weights[u] + intercepts[u]`` (raw feature units)."""

    weights: np.ndarray
    """(n_units, n_features)"""
    intercepts: np.ndarray
    alphas: np.ndarray
    """Each unit's chosen relative penalty."""
    feature_sd: np.ndarray
    """The training features' standard deviations (``weights * feature_sd`` compares features)."""
    held_out: np.ndarray
    """(n_units, n_images): nested cross-validated predictions of the training images."""
    held_out_r: np.ndarray
    r2_er: np.ndarray
    """Noise-corrected R^2 (Pospisil & Bair) of the held-out predictions; NaN without repeats."""
    n_images: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(n_units, n_images) predicted mean responses."""
        return self.weights @ np.asarray(features, dtype=np.float64).T + self.intercepts[:, None]


class _Standardized:
    """Training features z-scored, their SVD, and the map of new features into that basis."""

    def __init__(self, features: np.ndarray) -> None:
        self.mean = features.mean(axis=0)
        sd = features.std(axis=0)
        self.sd = np.where(sd > 1e-12 * max(float(np.abs(features).max(initial=0.0)), 1.0), sd, np.inf)
        u, self.s, vt = np.linalg.svd((features - self.mean) / self.sd, full_matrices=False)
        self.u, self.v = u, vt.T
        self.n = len(features)

    def project(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.sd) @ self.v

    def shrink(self, alphas: np.ndarray) -> np.ndarray:
        """``s / (s^2 + alpha n)`` for each alpha: (len(alphas), k)."""
        return self.s / (self.s**2 + np.asarray(alphas)[:, None] * self.n)


def within_training_range(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """``test`` features clipped, per feature, to the values the training images span."""
    return np.clip(test, train.min(axis=0), train.max(axis=0))


def _path(train: np.ndarray, targets: np.ndarray, test: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Predictions (n_alphas, n_test, n_units) of ridge fits for every alpha and unit."""
    basis = _Standardized(train)
    offset = targets.mean(axis=0)
    coefs = basis.u.T @ (targets - offset)  # (k, units)
    projected = basis.project(within_training_range(train, test))  # (m, k)
    return np.einsum("mk,ak,ku->amu", projected, basis.shrink(alphas), coefs) + offset


def _folds(n: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % folds)


def choose_alphas(features: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                  alphas: np.ndarray = ALPHAS, folds: int = FOLDS) -> np.ndarray:
    """Each unit's penalty with the least cross-validated squared error, (n_units,)."""
    fold = _folds(len(features), folds, rng)
    errors = np.zeros((len(alphas), targets.shape[1]))
    for k in range(folds):
        test = fold == k
        predicted = _path(features[~test], targets[~test], features[test], alphas)
        errors += ((predicted - targets[test]) ** 2).sum(axis=1)
    return alphas[np.argmin(errors, axis=0)]


def _fit_at(features: np.ndarray, targets: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights (units, features), intercepts, feature sd) of each unit's fit at its own alpha."""
    basis = _Standardized(features)
    offset = targets.mean(axis=0)
    coefs = basis.u.T @ (targets - offset)
    standard = basis.v @ (basis.shrink(alphas).T * coefs)  # (features, units), on z-scored features
    weights = (standard / basis.sd[:, None]).T
    return weights, offset - weights @ basis.mean, np.where(np.isfinite(basis.sd), basis.sd, 0.0)


def fit_ridge(features: np.ndarray, trials: TrialSums, seed: int = 0, alphas: np.ndarray = ALPHAS,
              folds: int = FOLDS) -> RidgeFit:
    """Fit every unit (columns of ``trials``) on the images (rows) every unit answered."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) != len(trials.counts):
        raise ValueError(f"features must be (images, features) with {len(trials.counts)} rows, not {features.shape}")
    seen = trials.answered
    if seen.sum() < MIN_IMAGES:
        raise CompactRigError(f"readouts need responses to at least {MIN_IMAGES} images, have {int(seen.sum())}; "
                              "present more images first")
    x, y = features[seen], trials.means[seen]
    rng = np.random.default_rng(seed)
    held_out = np.empty_like(y)
    fold = _folds(len(x), folds, rng)
    for k in range(folds):
        test = fold == k
        inner = choose_alphas(x[~test], y[~test], rng, alphas, folds)
        weights, intercepts, _ = _fit_at(x[~test], y[~test], inner)
        held_out[test] = within_training_range(x[~test], x[test]) @ weights.T + intercepts
    chosen = choose_alphas(x, y, rng, alphas, folds)
    weights, intercepts, sd = _fit_at(x, y, chosen)
    held_r = pearson_r(held_out, y, axis=0)
    noise_corrected = r2_er_rows(held_out.T, trials.sums[seen].T, trials.sumsq[seen].T, trials.counts[seen].T)
    full_held_out = np.full((y.shape[1], len(features)), np.nan)
    full_held_out[:, seen] = held_out.T
    return RidgeFit(weights, intercepts, chosen, sd, full_held_out, held_r, noise_corrected, int(seen.sum()))


def committee_predictions(features: np.ndarray, trials: TrialSums, alphas: np.ndarray, candidates: np.ndarray,
                          members: int = 8, seed: int = 0) -> np.ndarray:
    """(members, n_candidates, n_units): predictions of readouts refitted on bootstrap resamples of the images."""
    seen = np.flatnonzero(trials.answered)
    x, y = np.asarray(features, dtype=np.float64)[seen], trials.means[seen]
    rng = np.random.default_rng(seed)
    out = np.empty((members, len(candidates), y.shape[1]))
    for member in range(members):
        pick = rng.integers(0, len(x), len(x))
        weights, intercepts, _ = _fit_at(x[pick], y[pick], alphas)
        out[member] = np.asarray(candidates, dtype=np.float64) @ weights.T + intercepts
    return out


def disagreement(predictions: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(n_candidates,): the committee's spread, each unit's variance over members divided by ``scale``
    (the unit's response variance, so loud units do not decide alone), averaged over units."""
    return (predictions.var(axis=0) / np.maximum(scale, 1e-12)).mean(axis=1)
