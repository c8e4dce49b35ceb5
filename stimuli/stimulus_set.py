"""Stimulus sets on disk: one lossless PNG per image plus ``manifest.json`` with full provenance.

The PNGs hold exactly the pixels that will be shown (112x112 RGB, uint8). The manifest
records, per image: id, kind (natural / max / min / adversarial / gaudy), target neuron,
method parameters, seed, source image, predicted responses (by default the target's and those of the
neurons recorded with it: ``prediction_neurons``) with the identity of the bank that made them, the
software version and creation time.
Sets can be merged, filtered and reordered; saving then loading gives back the same
pixels and manifest.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from compactrig.engine import __version__
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.image_files import decode_rgb
from compactrig.engine.files.inside_folder import path_inside
from compactrig.engine.files.safe_output import write_atomically
from compactrig.engine.models.bank import ModelBank
from compactrig.engine.models.layout import IMAGE_SIZE

if TYPE_CHECKING:  # PyTorch only when predictions are made: reading and checking a set stays light
    from compactrig.engine.models.fast_predict import Predictor
    from compactrig.engine.progress import Progress

MANIFEST = "manifest.json"
FORMAT = "compactrig-stimulus-set"
FORMAT_VERSION = 1
KINDS = ("natural", "max", "min", "adversarial", "gaudy", "probe")
"""What an image of a set can be: recorded-world images, designed ones (``stimuli.design``, the closed loop) and the
probe family."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class StimulusRecord:
    """Provenance of one image of a set."""

    image_id: str
    kind: str
    target_neuron: str | None = None
    method: dict = field(default_factory=dict)
    seed: int | None = None
    source_image: str | None = None
    predicted: dict[str, float] = field(default_factory=dict)
    bank: dict = field(default_factory=dict)
    software_version: str = __version__
    created: str = ""


WINDOWS_RESERVED = frozenset(["CON", "PRN", "AUX", "NUL"]
                             + [f"{port}{k}" for port in ("COM", "LPT") for k in range(1, 10)])
"""Names Windows refuses as files, whatever the extension (``NUL.png`` is the null device)."""


def check_image_id(image_id: str) -> str:
    """Ids become file names on every system: letters, digits, ``._+-``, not starting with a dot, not a name
    that Windows reserves for a device."""
    if not _SAFE_ID.match(image_id):
        raise CompactRigError(f"image id {image_id!r}: use letters, digits and . _ + - only (it names a PNG file)")
    if image_id.split(".")[0].upper() in WINDOWS_RESERVED:
        raise CompactRigError(f"image id {image_id!r}: Windows reserves that name for a device; rename it "
                              f"(for example {image_id}_1)")
    return image_id


@dataclass
class StimulusSet:
    """Images (uint8 ``(n, 112, 112, 3)``) with one record each, in presentation-list order."""

    records: list[StimulusRecord]
    pixels: np.ndarray

    def __post_init__(self) -> None:
        if self.pixels.shape != (len(self.records), IMAGE_SIZE, IMAGE_SIZE, 3) or self.pixels.dtype != np.uint8:
            raise ValueError(f"pixels must be uint8 ({len(self.records)}, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), got "
                             f"{self.pixels.dtype} {self.pixels.shape}")
        seen: dict[str, str] = {}
        for record in self.records:
            check_image_id(record.image_id)
            other = seen.get(record.image_id.casefold())
            if other == record.image_id:
                raise CompactRigError(f"image id {record.image_id!r} appears twice in one stimulus set; ids must be "
                                      "unique")
            if other is not None:
                raise CompactRigError(f"image ids {other!r} and {record.image_id!r} differ only in case: on Windows "
                                      "and macOS they are one file; rename one")
            seen[record.image_id.casefold()] = record.image_id

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        return [r.image_id for r in self.records]

    @classmethod
    def empty(cls) -> StimulusSet:
        return cls([], np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))

    def select(self, indices: Iterable[int]) -> StimulusSet:
        chosen = list(indices)
        return StimulusSet([self.records[i] for i in chosen], self.pixels[chosen])

    def filtered(self, keep: Callable[[StimulusRecord], bool]) -> StimulusSet:
        return self.select(i for i, record in enumerate(self.records) if keep(record))

    def reordered(self, ids: list[str]) -> StimulusSet:
        """The images named by ``ids`` in that order (each id must be in the set)."""
        position = {image_id: i for i, image_id in enumerate(self.ids)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise CompactRigError(f"image id {missing[0]!r} is not in this stimulus set")
        return self.select(position[i] for i in ids)

    def not_in(self, other: StimulusSet) -> StimulusSet:
        """The images of ``other`` that this set does not already hold (same id and the same pixels): what
        adding ``other`` again would really add."""
        held = {image_id: k for k, image_id in enumerate(self.ids)}
        return other.select(k for k, image_id in enumerate(other.ids)
                            if image_id not in held or not np.array_equal(self.pixels[held[image_id]], other.pixels[k]))

    def merged(self, other: StimulusSet) -> StimulusSet:
        """This set followed by ``other``; a shared id is an error (ids name files)."""
        clash = sorted({i.casefold() for i in self.ids} & {i.casefold() for i in other.ids})
        if clash:
            raise CompactRigError(f"an image named {clash[0]!r} is already in the stimulus set (names become file "
                                  "names, so case does not tell them apart); rename or filter one first")
        return StimulusSet(self.records + other.records, np.concatenate([self.pixels, other.pixels]))

    def save(self, folder: str | Path) -> Path:
        """Write PNGs and the manifest (each written beside its name, then renamed into place).

        Only the set's own files are replaced or removed: PNGs named by the folder's previous, valid
        manifest that this set no longer holds go; any other file stays, and a PNG of a new image that
        would replace a file the manifest does not name (other than this very PNG) is refused before anything is
        written. A ``manifest.json`` that is not a stimulus set's is refused, not replaced."""
        folder = Path(folder)
        previous = {r.image_id.casefold(): f"{r.image_id}.png" for r in read_records(folder)} \
            if (folder / MANIFEST).exists() else {}
        _refuse_foreign_files(folder, self, set(previous))
        kept = {image_id.casefold() for image_id in self.ids}
        stale = [path_inside(folder, name, str(folder / MANIFEST)) for key, name in previous.items() if key not in kept]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_pngs(folder, self)
            _write_manifest(folder, self.records)
            for path in stale:
                path.unlink(missing_ok=True)
        except OSError as error:
            raise CompactRigError(f"{folder}: cannot write the stimulus set ({error.strerror or error})") from None
        return folder

    def save_records(self, folder: str | Path) -> Path:
        """Rewrite only the manifest of the set saved in ``folder`` with this set's records (new predictions):
        the folder must hold exactly these images, in this order, so no PNG is touched."""
        folder = Path(folder)
        if [r.image_id for r in read_records(folder)] != self.ids:
            raise CompactRigError(f"{folder}: holds other images than this set; save the set instead")
        try:
            _write_manifest(folder, self.records)
        except OSError as error:
            raise CompactRigError(f"{folder}: cannot write the manifest ({error.strerror or error})") from None
        return folder

    @classmethod
    def load(cls, folder: str | Path, only: Iterable[str] | None = None) -> StimulusSet:
        """Read a set written by ``save`` (``only``: just those ids); every problem is named with its file."""
        folder = Path(folder)
        records = read_records(folder)
        if only is not None:
            wanted = set(only)
            records = [r for r in records if r.image_id in wanted]
        pixels = np.zeros((len(records), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for index, record in enumerate(records):
            path = path_inside(folder, f"{check_image_id(record.image_id)}.png", str(folder / MANIFEST))
            fix = f"restore it or remove {record.image_id} from the manifest"
            if not path.is_file():
                raise CompactRigError(f"{path}: unusable stimulus image (no such file); {fix}")
            image = decode_rgb(path, f"{path}: unusable stimulus image")
            if image.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
                raise CompactRigError(f"{path}: unusable stimulus image (is {image.shape[1]}x{image.shape[0]}, "
                                      f"expected RGB 112x112: a set's PNGs are the pixels shown); {fix}")
            pixels[index] = image
        return cls(records, pixels)


def read_records(folder: str | Path) -> list[StimulusRecord]:
    """The manifest's records of the set in ``folder`` (no image is decoded)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise CompactRigError(f"{folder}: no {MANIFEST}; not a stimulus set (make one with "
                              "`compactrig stimuli import` or `compactrig synth`)")
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = manifest["images"]
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format is {manifest.get('format')!r}")
        version = manifest.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise ValueError(f"format_version is {version!r}; this CompactRig reads 1 to {FORMAT_VERSION} (a newer "
                             "version reads later ones)")
        if not isinstance(entries, list):
            raise ValueError("'images' is not a list")
        records = [record_from_entry(entry, index) for index, entry in enumerate(entries)]
    except (ValueError, KeyError, TypeError) as error:
        raise CompactRigError(f"{manifest_path}: not a valid stimulus-set manifest ({error}); fix the entry or "
                              "make the set again") from None
    for entry, record in zip(entries, records):
        check_image_id(record.image_id)
        if "file" in entry:
            path_inside(folder, entry["file"], f"{manifest_path}: image {record.image_id!r}")
            if entry["file"] != f"{record.image_id}.png":
                raise CompactRigError(f"{manifest_path}: image {record.image_id!r} names file {entry['file']!r}; a "
                                      f"set's images are named by their ids ({record.image_id}.png): fix the entry")
    return records


_OPTIONAL_TEXT = ("target_neuron", "source_image")
_TEXT = ("image_id", "kind", "software_version", "created")
_TABLES = ("method", "bank")


def record_from_entry(entry: object, index: int) -> StimulusRecord:
    """One manifest entry as a record, every field of the kind the record holds (text, a table, a whole seed,
    finite predicted responses per neuron); anything else is a ``ValueError`` naming the entry and field."""
    where = f"image {index}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is {type(entry).__name__}, not a table")
    if "file" in entry and not isinstance(entry["file"], str):
        raise ValueError(f"{where}: 'file' is {entry['file']!r}, not a file name")
    fields = {key: value for key, value in entry.items() if key != "file"}
    unknown = sorted(set(fields) - set(StimulusRecord.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{where} has unknown field {unknown[0]!r}")
    if not isinstance(fields.get("image_id"), str) or not isinstance(fields.get("kind"), str):
        raise ValueError(f"{where} needs text 'image_id' and 'kind'")
    if fields["kind"] not in KINDS:
        raise ValueError(f"{where}: kind is {fields['kind']!r}, not one of {', '.join(KINDS)}")
    for name in _TEXT + _OPTIONAL_TEXT:
        if name in fields and not isinstance(fields[name], str) and not (name in _OPTIONAL_TEXT
                                                                        and fields[name] is None):
            raise ValueError(f"{where}: {name!r} is {fields[name]!r}, not text")
    for name in _TABLES:
        if name in fields and not isinstance(fields[name], dict):
            raise ValueError(f"{where}: {name!r} is {fields[name]!r}, not a table")
    seed = fields.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"{where}: 'seed' is {seed!r}, not a whole number")
    predicted = fields.get("predicted", {})
    if not isinstance(predicted, dict) or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            for value in predicted.values()):
        raise ValueError(f"{where}: 'predicted' must map neuron ids to finite numbers, not {predicted!r}")
    return StimulusRecord(**fields)


def add_to_folder(folder: str | Path, images: StimulusSet) -> Path:
    """Append images to the set saved in ``folder`` writing only their PNGs (then the manifest, atomically);
    a PNG that would replace a file the manifest does not name (other than this very PNG) is refused."""
    folder = Path(folder)
    records = read_records(folder)
    clash = sorted({r.image_id.casefold() for r in records} & {i.casefold() for i in images.ids})
    if clash:
        raise CompactRigError(f"image id {clash[0]!r} is already in {folder}; rename or filter it first")
    _refuse_foreign_files(folder, images, set())
    try:
        _write_pngs(folder, images)
        _write_manifest(folder, records + images.records)
    except OSError as error:
        raise CompactRigError(f"{folder}: cannot write the stimulus set ({error.strerror or error})") from None
    return folder


def _refuse_foreign_files(folder: Path, images: StimulusSet, ours: set[str]) -> None:
    """Raise if writing ``images`` would replace a file that is not the set's own (``ours``: casefolded ids the
    folder's manifest names); a file that is exactly the PNG this save writes (a save cut short) is fine."""
    for record, pixels in zip(images.records, images.pixels):
        path = folder / f"{record.image_id}.png"
        if record.image_id.casefold() not in ours and path.exists() and not _same_pixels(path, pixels):
            raise CompactRigError(f"{path}: already exists and is not part of the stimulus set in {folder}; move it "
                                  f"away or rename image {record.image_id!r} (CompactRig replaces only its own files)")


def _same_pixels(path: Path, pixels: np.ndarray) -> bool:
    """True when ``path`` holds, byte for byte, the PNG a save writes for ``pixels`` (the encoding is
    deterministic): only such a file may be written again; nothing else is decoded or judged alike."""
    encoded = png_bytes(pixels)
    try:
        return path.stat().st_size == len(encoded) and path.read_bytes() == encoded
    except OSError:
        return False


def png_bytes(pixels: np.ndarray) -> bytes:
    """The lossless PNG of one uint8 ``(112, 112, 3)`` image, as a set stores it."""
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="PNG", optimize=False)
    return encoded.getvalue()


def _write_pngs(folder: Path, images: StimulusSet) -> None:
    for record, pixels in zip(images.records, images.pixels):
        encoded = png_bytes(pixels)

        def write(path: Path, encoded: bytes = encoded) -> int:
            return path.write_bytes(encoded)
        write_atomically(folder / f"{record.image_id}.png", write)


def _write_manifest(folder: Path, records: list[StimulusRecord]) -> None:
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "images": [{"file": f"{r.image_id}.png", **asdict(r)} for r in records]}
    write_atomically(folder / MANIFEST, lambda path: path.write_text(json.dumps(manifest, indent=1)))


def now() -> str:
    """Creation time as ISO 8601 UTC (seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def recorded_with(bank: ModelBank, neuron_id: str) -> list[str]:
    """The bank's neurons recorded in the same session as ``neuron_id`` (ids ``S:I`` sharing ``S``), itself
    included: the neurons an experimenter compares a designed image's target with."""
    session = neuron_id.partition(":")[0]
    return [n for n in bank.neuron_ids if n.partition(":")[0] == session]


def prediction_neurons(bank: ModelBank, record: StimulusRecord, neurons: Sequence[str] | None = None,
                       all_neurons: bool = False) -> list[str]:
    """Whose predicted responses ``record`` keeps: every bank neuron (``all_neurons``), the ones named, or by
    default its target's and those recorded with it (none for an image without a target in the bank).

    Predictions are not the set's record of what was shown (the pixels are, exactly, and the bank is named by
    its content hash), so any neuron's prediction can be added later (``compactrig stimuli predict``)."""
    if all_neurons:
        return list(bank.neuron_ids)
    if neurons is not None:
        return list(dict.fromkeys(bank.resolve(list(neurons))))
    if record.target_neuron is None or record.target_neuron not in set(bank.neuron_ids):
        return []
    return recorded_with(bank, record.target_neuron)


def annotate(bank: ModelBank, pixels: np.ndarray, records: list[StimulusRecord],
             predictor: Predictor | None = None, neurons: Sequence[str] | None = None,
             all_neurons: bool = False, replace_other_bank: bool = False,
             progress: Progress | None = None) -> StimulusSet:
    """A set whose records carry the bank's predicted responses (whose: ``prediction_neurons``), the bank's
    identity when any prediction was made, and the time. Predictions a record already holds from the same
    bank are kept beside the new ones; a record predicted by another bank is refused, unless
    ``replace_other_bank`` drops its predictions (one bank's numbers per record, named by its identity)."""
    from compactrig.engine.models.fast_predict import Predictor

    wanted = [prediction_neurons(bank, record, neurons, all_neurons) for record in records]
    identity = bank.identity() if any(wanted) else {}
    foreign = next((r for r, names in zip(records, wanted)
                    if names and r.bank and r.bank.get("sha256") != identity["sha256"]), None)
    if foreign is not None and not replace_other_bank:
        raise CompactRigError(f"image {foreign.image_id!r}: its predictions were made by the bank "
                              f"{foreign.bank.get('name')!r} (sha256 {str(foreign.bank.get('sha256'))[:12]}...), not "
                              f"{bank.name!r} ({str(identity['sha256'])[:12]}...); predict with that bank, or replace "
                              "them (`compactrig stimuli predict --replace`)")
    union = list(dict.fromkeys(n for names in wanted for n in names))
    if union and len(pixels):
        values = (predictor or Predictor(bank)).predict(pixels, neuron_ids=union, progress=progress)
    else:
        values = np.zeros((len(union), len(pixels)), np.float32)
    row = {n: r for r, n in enumerate(union)}
    created = now()
    annotated = []
    for i, (record, names) in enumerate(zip(records, wanted)):
        if not names:
            annotated.append(replace(record, created=record.created or created))
            continue
        kept = record.predicted if record.bank.get("sha256") == identity["sha256"] else {}
        annotated.append(replace(record, bank=identity, created=record.created or created,
                                 predicted={**kept, **{n: float(values[row[n], i]) for n in names}}))
    return StimulusSet(annotated, pixels)


def load_or_empty(folder: str | Path) -> StimulusSet:
    """The set in ``folder``, or an empty one if the folder holds none yet."""
    return StimulusSet.load(folder) if (Path(folder) / MANIFEST).is_file() else StimulusSet.empty()
