"""Generated probe images: gratings, dot lattices and colour blobs.

Used by ``compactrig demo`` and the demo-bank tests to show what a neuron prefers.
Every pattern is drawn on mean grey (128) with the same *contrast* convention: the
largest deviation from grey is ``127 * contrast`` in 0..255 units, so a grating and a
dot lattice of equal contrast have equal peak amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compactrig.engine.models.layout import IMAGE_SIZE
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

GREY = 128.0


@dataclass(frozen=True)
class Probe:
    """One probe image with an id and a readable description."""

    probe_id: str
    description: str
    pixels: np.ndarray  # uint8 (112, 112, 3)


def _coordinates() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)
    return y, x


def _to_uint8(luminance: np.ndarray, colour: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Grey plus ``luminance`` (signed deviation) scaled per channel by ``colour``."""
    channels = [GREY + luminance * c for c in colour]
    return np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def grating(orientation_deg: float, period_px: float = 4.0, contrast: float = 1.0,
            phase: float = 0.0) -> np.ndarray:
    """A sinusoidal luminance grating; 0 degrees = vertical bars (varying along x)."""
    y, x = _coordinates()
    theta = np.deg2rad(orientation_deg)
    along = x * np.cos(theta) + y * np.sin(theta)
    return _to_uint8(127 * contrast * np.cos(2 * np.pi * along / period_px + phase))


def dot_lattice(spacing_px: float = 4.0, dot_sigma_px: float = 0.7, contrast: float = 1.0) -> np.ndarray:
    """Bright Gaussian dots on a square lattice, peak deviation ``127 * contrast``."""
    y, x = _coordinates()
    dy = (y % spacing_px) - spacing_px / 2
    dx = (x % spacing_px) - spacing_px / 2
    dots = np.exp(-(dx**2 + dy**2) / (2 * dot_sigma_px**2))
    return _to_uint8(127 * contrast * dots)


def colour_blob(colour: tuple[float, float, float], radius_px: float = 20.0, contrast: float = 1.0) -> np.ndarray:
    """A soft-edged disc at the image centre, ``colour`` a signed direction per channel."""
    y, x = _coordinates()
    centre = (IMAGE_SIZE - 1) / 2
    distance = np.hypot(x - centre, y - centre)
    disc = 1.0 / (1.0 + np.exp((distance - radius_px) / 1.5))
    return _to_uint8(127 * contrast * disc, colour)


def standard_probes(period_px: float = 4.0) -> list[Probe]:
    """The probe set of ``compactrig demo``: gratings, a dot lattice, colour blobs, grey."""
    return [
        Probe("grating_0", f"vertical grating, period {period_px:g} px", grating(0, period_px)),
        Probe("grating_45", f"oblique grating (45 deg), period {period_px:g} px", grating(45, period_px)),
        Probe("grating_90", f"horizontal grating, period {period_px:g} px", grating(90, period_px)),
        Probe("dots", f"dot lattice, spacing {period_px:g} px", dot_lattice(period_px)),
        Probe("blob_red", "red blob (R up, G down)", colour_blob((1.0, -1.0, 0.0))),
        Probe("blob_green", "green blob (G up, R down)", colour_blob((-1.0, 1.0, 0.0))),
        Probe("blob_blue", "blue blob (B up)", colour_blob((0.0, 0.0, 1.0))),
        Probe("grey", "uniform mean grey", _to_uint8(np.zeros((IMAGE_SIZE, IMAGE_SIZE)))),
    ]


def probe_family() -> list[Probe]:
    """Thirty probes that span what the demo neurons (and V4 units broadly) care about: gratings of four
    orientations, two periods and two contrasts, dot lattices of three spacings and two contrasts, and
    colour blobs of four hues and two sizes. A stimulus set needs images that drive a unit differently
    before a fit of responses against predictions means anything."""
    probes = [Probe(f"grating_{o}_p{p}_c{c:g}", f"grating {o} deg, period {p} px, contrast {c:g}", grating(o, p, c))
              for o in (0, 45, 90, 135) for p in (4, 8) for c in (1.0, 0.5)]
    probes += [Probe(f"dots_s{s}_c{c:g}", f"dot lattice, spacing {s} px, contrast {c:g}", dot_lattice(s, contrast=c))
               for s in (4, 6, 8) for c in (1.0, 0.5)]
    hues = {"red": (1.0, -1.0, 0.0), "green": (-1.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0), "yellow": (1.0, 1.0, -1.0)}
    probes += [Probe(f"blob_{name}_r{r}", f"{name} blob, radius {r} px", colour_blob(colour, r))
               for name, colour in hues.items() for r in (10, 24)]
    return probes


def probe_family_set() -> StimulusSet:
    """The probe family as a stimulus set (kind ``probe``, the description as its method)."""
    probes = probe_family()
    records = [StimulusRecord(image_id=p.probe_id, kind="probe", method={"probe": p.description}) for p in probes]
    return StimulusSet(records, np.stack([p.pixels for p in probes]))
