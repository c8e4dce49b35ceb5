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
from compactrig.engine.stats.response_sums import PerImageSums

ALPHAS = np.logspace(-4, 2, 13)
"""Relative penalties tried: ``lambda = alpha * n_train`` on z-scored features."""
FOLDS = 5
MIN_IMAGES = 2 * FOLDS
"""A unit with responses to fewer images than this leaves nothing to cross-validate with."""


@dataclass(frozen=True)
class RidgeFit:
    """Every unit's readout: ``response = features @ weights[u] + intercepts[u]`` (raw feature units)."""

    weights: np.ndarray
    """(n_units, n_features)"""
    intercepts: np.ndarray
    alphas: np.ndarray
    """Each unit's chosen relative penalty."""
    feature_sd: np.ndarray
    """(n_units, n_features): the standard deviations of each unit's training features (``weights *
    feature_sd`` compares features; 0 for a feature constant there)."""
    held_out: np.ndarray
    """(n_units, n_images): nested cross-validated predictions of the images; NaN where the unit has no
    response to the image (it is not in that unit's fit)."""
    held_out_r: np.ndarray
    r2_er: np.ndarray
    """Noise-corrected R^2 (Pospisil & Bair) of the held-out predictions; NaN without repeats."""
    n_images: int
    """Images some unit's readout was fitted on (``images_fitted`` counts them per unit)."""

    @property
    def images_fitted(self) -> np.ndarray:
        """Per unit: the images its readout was fitted on (those it has a response to)."""
        return np.asarray(np.isfinite(self.held_out).sum(axis=1))

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


def enough_responses(responses: PerImageSums) -> bool:
    """There is a unit and every unit has responses to ``MIN_IMAGES`` images or more (a fit can be made)."""
    return bool(responses.units) and int(responses.answered().sum(axis=0).min()) >= MIN_IMAGES


def _unit_groups(answered: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image rows, unit columns) of each set of units that answered the same images."""
    patterns, group = np.unique(answered.T, axis=0, return_inverse=True)
    group = np.asarray(group).reshape(-1)
    return [(np.flatnonzero(pattern), np.flatnonzero(group == g)) for g, pattern in enumerate(patterns)]


def fit_ridge(features: np.ndarray, responses: PerImageSums, seed: int = 0, alphas: np.ndarray = ALPHAS,
              folds: int = FOLDS) -> RidgeFit:
    """Fit every unit (columns of ``responses``) on the images (rows, as ``features``) it answered."""
    features = np.asarray(features, dtype=np.float64)
    n_images, n_units = len(responses.image_ids), len(responses.units)
    if features.ndim != 2 or len(features) != n_images:
        raise ValueError(f"features must be (images, features) with {n_images} rows, not {features.shape}")
    if not n_units:
        raise ValueError("no units to fit readouts for")
    answered = responses.answered()
    if not enough_responses(responses):
        fewest = int(np.argmin(answered.sum(axis=0)))
        raise CompactRigError(f"readouts need responses to at least {MIN_IMAGES} images; unit "
                              f"{responses.units[fewest]} has {int(answered[:, fewest].sum())}; present more "
                              "images first")
    means, sums, sumsq, counts = responses.means(), responses.sums, responses.sumsq, responses.counts
    weights, sd = np.empty((n_units, features.shape[1])), np.empty((n_units, features.shape[1]))
    intercepts, chosen = np.empty(n_units), np.empty(n_units)
    held_r, noise_corrected = np.empty(n_units), np.empty(n_units)
    full_held_out = np.full((n_units, n_images), np.nan)
    for rows, units in _unit_groups(answered):
        x, y, picked = features[rows], means[np.ix_(rows, units)], np.ix_(rows, units)
        held_out, chosen[units], fitted = _nested_fit(x, y, seed, alphas, folds)
        weights[units], intercepts[units], sd[units] = fitted
        held_r[units] = pearson_r(held_out, y, axis=0)
        noise_corrected[units] = r2_er_rows(held_out.T, sums[picked].T, sumsq[picked].T, counts[picked].T)
        full_held_out[np.ix_(units, rows)] = held_out.T
    return RidgeFit(weights, intercepts, chosen, sd, full_held_out, held_r, noise_corrected,
                    int(answered.any(axis=1).sum()))


def _nested_fit(x: np.ndarray, y: np.ndarray, seed: int, alphas: np.ndarray,
                folds: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """On one design (every column of ``y`` answered every row of ``x``): the nested held-out predictions
    (images, units), each unit's penalty, and the fit at it (``_fit_at``)."""
    rng = np.random.default_rng(seed)
    held_out = np.empty_like(y)
    fold = _folds(len(x), folds, rng)
    for k in range(folds):
        test = fold == k
        inner = choose_alphas(x[~test], y[~test], rng, alphas, folds)
        weights, intercepts, _ = _fit_at(x[~test], y[~test], inner)
        held_out[test] = within_training_range(x[~test], x[test]) @ weights.T + intercepts
    chosen = choose_alphas(x, y, rng, alphas, folds)
    return held_out, chosen, _fit_at(x, y, chosen)


def committee_predictions(features: np.ndarray, responses: PerImageSums, alphas: np.ndarray, candidates: np.ndarray,
                          members: int = 8, seed: int = 0) -> np.ndarray:
    """(members, n_candidates, n_units): predictions of readouts refitted on bootstrap resamples of the images
    (of each unit's own images, as ``fit_ridge``)."""
    features, candidates = np.asarray(features, dtype=np.float64), np.asarray(candidates, dtype=np.float64)
    means = responses.means()
    out = np.empty((members, len(candidates), len(responses.units)))
    for rows, units in _unit_groups(responses.answered()):
        x, y = features[rows], means[np.ix_(rows, units)]
        rng = np.random.default_rng(seed)
        for member in range(members):
            pick = rng.integers(0, len(x), len(x))
            weights, intercepts, _ = _fit_at(x[pick], y[pick], alphas[units])
            out[member][:, units] = candidates @ weights.T + intercepts
    return out


def disagreement(predictions: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(n_candidates,): the committee's spread, each unit's variance over members divided by ``scale``
    (the unit's response variance, ``response_variance``, so loud units do not decide alone), averaged
    over units."""
    return (predictions.var(axis=0) / np.maximum(scale, 1e-12)).mean(axis=1)


def response_variance(responses: PerImageSums) -> np.ndarray:
    """Per unit: the variance of its mean responses over the images it answered (``disagreement``'s scale)."""
    return np.asarray(np.nanvar(responses.means(), axis=0))
