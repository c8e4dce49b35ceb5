"""Summaries of predicted responses for display (the GUI draws them; it computes nothing)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ResponseDistribution:
    """A neuron's predicted responses to an image set, binned for a histogram."""

    edges: np.ndarray
    counts: np.ndarray
    minimum: float
    median: float
    maximum: float
    best_image: str

    def describe(self) -> str:
        return (f"min {self.minimum:.3f}, median {self.median:.3f}, max {self.maximum:.3f} "
                f"(best image: {self.best_image})")


def response_distribution(values: np.ndarray, image_ids: list[str], bins: int = 30) -> ResponseDistribution:
    values = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(values, bins=min(bins, max(len(values), 1)))
    return ResponseDistribution(edges, counts, float(values.min()), float(np.median(values)),
                                float(values.max()), image_ids[int(values.argmax())])
