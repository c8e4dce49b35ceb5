"""Diversity of a neuron's synthesized images: are they different images or one image n times?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DiversityReport:
    """Predicted responses and the pairwise Pearson correlation of the images' pixels."""

    image_ids: list[str]
    responses: np.ndarray
    correlations: np.ndarray  # (n, n), 1 on the diagonal

    def most_similar_pair(self) -> tuple[str, str, float] | None:
        if len(self.image_ids) < 2:
            return None
        off_diagonal = self.correlations - 2 * np.eye(len(self.image_ids))
        i, j = np.unravel_index(np.argmax(off_diagonal), off_diagonal.shape)
        return self.image_ids[i], self.image_ids[j], float(self.correlations[i, j])

    def format(self) -> str:
        lines = ["image responses and pairwise pixel correlations (r > 0.9: near-duplicates)"]
        width = max(len(i) for i in self.image_ids)
        header = " " * (width + 11) + " ".join(f"{k:>6}" for k in range(len(self.image_ids)))
        lines.append(header)
        for k, (image_id, response) in enumerate(zip(self.image_ids, self.responses)):
            row = " ".join(f"{c:6.2f}" for c in self.correlations[k])
            lines.append(f"{k:>2} {image_id:<{width}} {response:7.3f} {row}")
        pair = self.most_similar_pair()
        if pair is not None:
            lines.append(f"most similar: {pair[0]} and {pair[1]} (r = {pair[2]:.3f})")
        return "\n".join(lines)


def diversity_report(image_ids: list[str], pixels: np.ndarray, responses: np.ndarray) -> DiversityReport:
    """Pairwise correlations over all channel values of each image."""
    flat = pixels.reshape(len(pixels), -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1)
    norms[norms == 0] = 1.0  # a uniform image correlates with nothing
    unit = flat / norms[:, None]
    correlations = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(correlations, 1.0)
    return DiversityReport(list(image_ids), np.asarray(responses, dtype=np.float64), correlations)
