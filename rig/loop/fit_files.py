"""Every readout fit of a loop, stored in the session folder: ``DIR/loop/readouts/fit-PPPPPP.npz``.

One file per fit, named for the presentations it was fitted on, written atomically, by the loop's
controller (so the window's fits and ``compactrig loop run``'s alike). Each holds the units, the
images fitted and the response sums the fit used (counts, sums, sums of squares, and the means: NaN
where a unit has no response to an image, which that unit's fit left out), what the readouts read
(the bank neurons, each feature's neuron), every unit's weights, penalty, nested held-out
predictions, held-out r and r2_ER: enough for ``compactrig loop report`` to print the table the
window shows without the bank. A second fit on as many presentations (another feature choice, say)
is stored beside the first as ``fit-PPPPPP-K.npz``; the same fit made again (a resumed loop's first)
is not stored twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.readout.features import FeatureSpec
from compactrig.engine.readout.ridge import RidgeFit
from compactrig.engine.stats.response_sums import PerImageSums
from compactrig.rig.loop.events import ReadoutsFitted
from compactrig.rig.loop.loop_plan import LOOP_DIR

READOUTS_DIR = "readouts"
FIT_ARRAYS = ("weights", "intercepts", "alphas", "feature_sd", "held_out", "held_out_r", "r2_er")
SUM_ARRAYS = ("counts", "sums", "sumsq")
FIT_NAME = re.compile(r"^fit-(\d{6,})(?:-(\d+))?\.npz$")


@dataclass(frozen=True)
class StoredFit:
    """One stored readout fit (rows of ``fit`` are ``units``; columns of ``held_out`` are ``image_ids``)."""

    at: int
    """Presentations it was fitted on."""
    units: list[str]
    image_ids: list[str]
    responses: PerImageSums
    """The (images, units) response sums it was fitted to; ``responses.means()`` is NaN where a unit has none."""
    features: str
    neuron_ids: list[str]
    owners: np.ndarray
    """Feature -> index into ``neuron_ids`` of the bank neuron it comes from."""
    fit: RidgeFit


def readouts_folder(session: Path) -> Path:
    return Path(session) / LOOP_DIR / READOUTS_DIR


def save_fit(session: Path, fitted: ReadoutsFitted, spec: FeatureSpec, bank: ModelBank) -> Path | None:
    """Write ``fitted``; None when the same fit is already stored (a resumed loop's first fit)."""
    folder = readouts_folder(session)
    fit, responses = fitted.fit, fitted.data.responses
    meta = {"at": fitted.at, "units": list(fitted.units), "image_ids": list(responses.image_ids),
            "features": spec.describe(), "feature_stage": spec.stage, "neuron_ids": list(spec.neuron_ids),
            "n_images": fit.n_images}
    path = folder / f"fit-{fitted.at:06d}.npz"
    number = 0
    while path.exists():
        if _meta_of(path) == meta:
            return None
        number += 1
        path = folder / f"fit-{fitted.at:06d}-{number}.npz"

    def write(staging: Path) -> None:
        with staging.open("wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), means=responses.means(),
                     **{name: getattr(responses, name) for name in SUM_ARRAYS},
                     owners=spec.owners(bank), **{name: getattr(fit, name) for name in FIT_ARRAYS})

    write_atomically(path, write)
    return path


def _meta_of(path: Path) -> object:
    """A stored fit's description, or None when it cannot be read (it is then never taken for this fit)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return json.loads(str(stored["meta"]))
    except (OSError, ValueError, KeyError):
        return None


def load_fits(session: Path) -> list[StoredFit]:
    """Every stored fit, oldest first; a damaged file is named with the fix."""
    folder = readouts_folder(session)
    paths = [p for p in folder.glob("fit-*.npz") if FIT_NAME.match(p.name)] if folder.is_dir() else []

    def order(path: Path) -> tuple[int, int]:
        match = FIT_NAME.match(path.name)
        assert match is not None  # only such names are listed
        return int(match.group(1)), int(match.group(2) or 0)
    return [_load(path) for path in sorted(paths, key=order)]


def _load(path: Path) -> StoredFit:
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {name: np.asarray(stored[name]) for name in FIT_ARRAYS}
            sums = {name: np.asarray(stored[name]) for name in SUM_ARRAYS}
            owners = np.asarray(stored["owners"])
        units, image_ids = [str(u) for u in meta["units"]], [str(i) for i in meta["image_ids"]]
        fit = RidgeFit(n_images=int(meta["n_images"]), **arrays)
        if fit.weights.shape[0] != len(units) or fit.held_out.shape != (len(units), len(image_ids)) \
                or fit.feature_sd.shape != fit.weights.shape or owners.shape != (fit.weights.shape[1],):
            raise ValueError("its arrays do not match its units, images and features")
        responses = PerImageSums.from_counts(units, image_ids, sums["counts"], sums["sums"], sums["sumsq"])
        return StoredFit(int(meta["at"]), units, image_ids, responses, str(meta["features"]),
                         [str(n) for n in meta["neuron_ids"]], owners, fit)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CompactRigError(f"{path}: unreadable readout fit ({error}); move it out of the folder") from None
