"""Every readout fit of a loop, stored in the session folder: ``DIR/loop/readouts/fit-PPPPPP.npz``.

One file per fit, named for the presentations it was fitted on, written atomically. Each holds the
units, the images fitted and their mean responses, what the readouts read (the bank neurons, each
feature's neuron), every unit's weights, penalty, nested held-out predictions, held-out r and r2_ER:
enough for ``compactrig loop report`` to print the table the window shows without the bank.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.readout.features import FeatureSpec
from compactrig.engine.readout.ridge import RidgeFit
from compactrig.rig.loop.events import ReadoutsFitted
from compactrig.rig.loop.loop_plan import LOOP_DIR

READOUTS_DIR = "readouts"
FIT_ARRAYS = ("weights", "intercepts", "alphas", "feature_sd", "held_out", "held_out_r", "r2_er")


@dataclass(frozen=True)
class StoredFit:
    """One stored readout fit (rows of ``fit`` are ``units``; columns of ``held_out`` are ``image_ids``)."""

    at: int
    """Presentations it was fitted on."""
    units: list[str]
    image_ids: list[str]
    means: np.ndarray
    """(images, units) mean responses it was fitted to (images some unit did not answer are left out of the fit)."""
    counts: np.ndarray
    """(images, units) responses behind each mean."""
    features: str
    neuron_ids: list[str]
    owners: np.ndarray
    """Feature -> index into ``neuron_ids`` of the bank neuron it comes from."""
    fit: RidgeFit


def readouts_folder(session: Path) -> Path:
    return Path(session) / LOOP_DIR / READOUTS_DIR


def save_fit(session: Path, fitted: ReadoutsFitted, spec: FeatureSpec, bank: ModelBank) -> Path | None:
    """Write ``fitted``; None when a fit on as many presentations is already stored (a resumed loop's first fit)."""
    folder = readouts_folder(session)
    path = folder / f"fit-{fitted.at:06d}.npz"
    if path.exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    fit, data = fitted.fit, fitted.data
    meta = {"at": fitted.at, "units": list(fitted.units), "image_ids": list(data.image_ids),
            "features": spec.describe(), "feature_stage": spec.stage, "neuron_ids": list(spec.neuron_ids),
            "n_images": fit.n_images}

    def write(staging: Path) -> None:
        with staging.open("wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), means=data.trials.means, counts=data.trials.counts,
                     owners=spec.owners(bank), **{name: getattr(fit, name) for name in FIT_ARRAYS})

    write_atomically(path, write)
    return path


def load_fits(session: Path) -> list[StoredFit]:
    """Every stored fit, oldest first; a damaged file is named with the fix."""
    folder = readouts_folder(session)
    paths = sorted(folder.glob("fit-*.npz")) if folder.is_dir() else []
    return [_load(path) for path in paths]


def _load(path: Path) -> StoredFit:
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {name: np.asarray(stored[name]) for name in FIT_ARRAYS}
            means, counts, owners = stored["means"], stored["counts"], stored["owners"]
        units, image_ids = [str(u) for u in meta["units"]], [str(i) for i in meta["image_ids"]]
        fit = RidgeFit(n_images=int(meta["n_images"]), **arrays)
        if fit.weights.shape[0] != len(units) or fit.held_out.shape != (len(units), len(image_ids)) \
                or means.shape != (len(image_ids), len(units)):
            raise ValueError("its arrays do not match its units and images")
        return StoredFit(int(meta["at"]), units, image_ids, means, counts, str(meta["features"]),
                         [str(n) for n in meta["neuron_ids"]], owners, fit)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CompactRigError(f"{path}: unreadable readout fit ({error}); move it out of the folder") from None
