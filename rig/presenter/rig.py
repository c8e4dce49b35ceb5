"""The rig file (TOML): monitor geometry, image placement, timing, photodiode and markers.

Sizes are given in degrees of visual angle; pixels per degree follow from the viewing
distance, the monitor width and the horizontal resolution. Durations are whole frames
at the configured refresh (``frames_on``), or milliseconds that must be a whole number
of frames (``on_ms``). Loading validates everything and reports one line per problem: every
number must be finite and within physical bounds (a distance of 1-1000 cm, an image of at most
180 degrees, at least one frame on, ...), and a whole number where a count is meant.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.engine.models.layout import IMAGE_SIZE
from compactrig.plugins.event_codes import CodeTable, parse_code_table

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right", "none")

class RigFileError(CompactRigError):
    """Every problem found in a rig file, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = [f"{source}: {p}" for p in problems]
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class RigConfig:
    """A validated rig; the derived pixel sizes are what the presenter draws with."""

    screen_index: int = 0
    fullscreen: bool = False
    resolution: tuple[int, int] = (1280, 720)
    window_position: tuple[int, int] | None = None
    """Top-left corner of a (not full-screen) presenter window on its screen, in pixels; None: centred."""
    refresh_hz: float = 60.0
    distance_cm: float = 57.0
    width_cm: float = 53.0
    gamma: float | None = None
    background: int = 128
    pace_frames: bool = False
    image_size_deg: float = 4.0
    image_position_deg: tuple[float, float] = (4.0, -3.0)
    fixation_size_deg: float = 0.2
    fixation_colour: tuple[int, int, int] = (255, 0, 0)
    photodiode_corner: str = "bottom-left"
    photodiode_size_px: int = 40
    frames_on: int = 6
    frames_off: int = 6
    images_per_trial: int = 5
    inter_trial_s: float = 0.5
    acquire_s: float = 0.0
    """How long the fixation point waits for fixation before it is taken down for ``inter_trial_s`` and shown
    again (a time-out, as rigs give); 0: it waits as long as it takes."""
    marker_outputs: tuple[str, ...] = ("none",)
    marker_options: dict[str, Any] = field(default_factory=dict)
    event_codes: CodeTable = CodeTable()
    """``[markers.codes]``: the words the event-code outputs send (``plugins/event_codes.py``)."""
    source_name: str = "simulated"
    source_options: dict[str, Any] = field(default_factory=dict)
    gate_name: str = "always"
    gate_options: dict[str, Any] = field(default_factory=dict)

    def with_source(self, name: str | None, options: Mapping[str, Any]) -> RigConfig:
        """This rig with the source a command line names (``--source``, ``--source-opt``): ``name`` (None: the
        rig's own), with ``options`` over the rig's options when it is the rig's source, over none otherwise."""
        chosen = name or self.source_name
        kept = self.source_options if chosen == self.source_name else {}
        return replace(self, source_name=chosen, source_options={**kept, **options})

    @property
    def pixels_per_degree(self) -> float:
        """Horizontal pixels per degree at the screen centre: res / width * 2 d tan(0.5 deg)."""
        return self.resolution[0] / self.width_cm * 2 * self.distance_cm * math.tan(math.radians(0.5))

    def degrees_to_pixels(self, degrees: float) -> float:
        return degrees * self.pixels_per_degree

    @property
    def image_size_px(self) -> float:
        return self.degrees_to_pixels(self.image_size_deg)

    @property
    def image_position_px(self) -> tuple[float, float]:
        """Centre of the image relative to the screen centre (x right, y up), in pixels."""
        return (self.degrees_to_pixels(self.image_position_deg[0]), self.degrees_to_pixels(self.image_position_deg[1]))

    def drawn_image_px(self, image_pixels: int = IMAGE_SIZE) -> int:
        """The side actually drawn: the whole multiple of the image's pixels nearest ``size_deg``
        (at least 1x), so each image pixel is a k x k block of screen pixels (nearest-neighbour)."""
        return image_pixels * max(1, round(self.image_size_px / image_pixels))

    def drawn_image_deg(self, image_pixels: int = IMAGE_SIZE) -> float:
        return self.drawn_image_px(image_pixels) / self.pixels_per_degree

    def distance_for_exact_size(self, image_pixels: int = IMAGE_SIZE) -> float:
        """The viewing distance (cm) at which the drawn side is exactly ``size_deg`` (pixels per degree grow
        with the distance: ``res / width * 2 d tan(0.5 deg)``)."""
        wanted = self.drawn_image_px(image_pixels) / self.image_size_deg
        return wanted * self.width_cm / (self.resolution[0] * 2 * math.tan(math.radians(0.5)))

    def describe_drawn_image(self, image_pixels: int = IMAGE_SIZE) -> str:
        """The image's drawn size, and, where it is not ``[image] size_deg``, why: an image is drawn at a whole
        multiple of its pixels (nearest-neighbour, at least 1x), so the animal sees exactly the pixels the
        models were given, and ``size_deg`` is only the size that multiple is chosen by (the one text the
        Rig view and ``rig check`` show)."""
        side, drawn = self.drawn_image_px(image_pixels), self.drawn_image_deg(image_pixels)
        text = (f"images drawn {side} px ({side // image_pixels}x their {image_pixels} pixels, nearest-neighbour) "
                f"= {drawn:.2f} deg")
        if f"{drawn:.2f}" == f"{self.image_size_deg:.2f}":
            return f"{text} (size_deg = {self.image_size_deg:g})"
        rule = ("never smaller than 1x" if self.image_size_px < image_pixels / 2 else
                f"at the whole multiple of its {image_pixels} pixels nearest size_deg")
        return (f"{text}, not the {self.image_size_deg:g} deg of size_deg: {self.image_size_deg:g} deg is "
                f"{self.image_size_px:.1f} px on this screen, and an image is drawn {rule}, so that the animal sees "
                f"exactly its pixels (distance_cm = {self.distance_for_exact_size(image_pixels):.1f} would make "
                f"{side} px {self.image_size_deg:g} deg)")

    def pixel_aligned_position(self, side: int) -> tuple[float, float]:
        """The image centre rounded so its edges fall on screen-pixel boundaries (PsychoPy's ``pix``
        origin is the window centre, a pixel boundary only for even sizes)."""
        def aligned(offset: float, screen: int) -> float:
            return round(offset) + 0.5 * ((screen + side) % 2)
        x, y = self.image_position_px
        return aligned(x, self.resolution[0]), aligned(y, self.resolution[1])

    def fixation_overlaps_image(self, image_pixels: int = IMAGE_SIZE) -> bool:
        """True when the fixation dot (at the screen centre) covers some of the image's pixels."""
        half = self.drawn_image_px(image_pixels) / 2
        x, y = self.pixel_aligned_position(self.drawn_image_px(image_pixels))
        radius = self.fixation_size_px / 2 if self.fixation_size_px > 0 else 0.0
        nearest_x, nearest_y = min(max(0.0, x - half), x + half), min(max(0.0, y - half), y + half)
        return self.fixation_size_px > 0 and nearest_x ** 2 + nearest_y ** 2 < radius ** 2 + 1e-9

    @property
    def fixation_size_px(self) -> float:
        return self.degrees_to_pixels(self.fixation_size_deg)

    @property
    def inter_trial_frames(self) -> int:
        return round(self.inter_trial_s * self.refresh_hz)


def _is_number(value: Any, integer: bool = False) -> bool:
    """A TOML integer (or, unless ``integer``, a float) that is finite; true and false are not numbers."""
    kinds = int if integer else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)


def _within(low: float, high: float, integer: bool = False, above: bool = False) -> Callable[[Any], bool]:
    """A check: a finite number (whole when ``integer``) in ``low..high``, excluding ``low`` when ``above``."""
    return lambda v: _is_number(v, integer) and (low < v if above else low <= v) and v <= high


def _pair(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and len(v) == 2 and all(check(x) for x in v)


def _colour(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(_within(0, 255, integer=True)(v) for v in value)


MAX_PIXELS_SIDE = 16384
"""The widest and tallest screen accepted, in pixels (beyond any monitor made)."""
MAX_FRAMES = 100_000
"""The most frames an image may be on or off (half an hour at 60 Hz): a larger number is a typo."""

Check = tuple[str, Callable[[Any], bool], str]
SCHEMA: dict[str, dict[str, Check]] = {
    "screen": {
        "index": ("screen_index", _within(0, 64, integer=True), "a screen number 0, 1, ..."),
        "fullscreen": ("fullscreen", lambda v: isinstance(v, bool), "true or false"),
        "resolution": ("resolution", _pair(_within(1, MAX_PIXELS_SIDE, integer=True)),
                       f"[width, height] in pixels, whole numbers 1-{MAX_PIXELS_SIDE}"),
        "position": ("window_position", _pair(_within(0, 10 * MAX_PIXELS_SIDE, integer=True)),
                     "[x, y] of the window's top-left corner in pixels (not full screen), whole numbers >= 0"),
        "refresh_hz": ("refresh_hz", _within(20, 500), "a refresh rate in Hz (20-500)"),
        "distance_cm": ("distance_cm", _within(1, 1000), "the eye-to-screen distance in cm (1-1000)"),
        "width_cm": ("width_cm", _within(1, 1000), "the visible screen width in cm (1-1000)"),
        "gamma": ("gamma", _within(0, 5, above=True), "a display gamma (0-5], or leave it out"),
        "background": ("background", _within(0, 255, integer=True), "a grey level 0-255"),
        "pace_frames": ("pace_frames", lambda v: isinstance(v, bool), "true or false"),
    },
    "image": {
        "size_deg": ("image_size_deg", _within(0, 180, above=True), "the image width in degrees (0-180]"),
        "position_deg": ("image_position_deg", _pair(_within(-90, 90)),
                         "[x, y] of the image centre in degrees, each -90 to 90"),
    },
    "fixation": {
        "size_deg": ("fixation_size_deg", _within(0, 90), "the dot diameter in degrees, 0-90 (0 hides it)"),
        "colour": ("fixation_colour", _colour, "[r, g, b], each a whole number 0-255"),
    },
    "photodiode": {
        "corner": ("photodiode_corner", lambda v: v in CORNERS, f"one of {', '.join(CORNERS)}"),
        "size_px": ("photodiode_size_px", _within(1, MAX_PIXELS_SIDE, integer=True),
                    "the patch side in pixels, a whole number > 0"),
    },
    "timing": {
        "frames_on": ("frames_on", _within(1, MAX_FRAMES, integer=True), f"whole frames, 1-{MAX_FRAMES}"),
        "frames_off": ("frames_off", _within(0, MAX_FRAMES, integer=True), f"whole frames, 0-{MAX_FRAMES}"),
        "on_ms": ("on_ms", _within(0, 1_000_000, above=True),
                  "milliseconds (0-1000000], a whole number of frames"),
        "off_ms": ("off_ms", _within(0, 1_000_000), "milliseconds 0-1000000, a whole number of frames"),
        "images_per_trial": ("images_per_trial", _within(1, 10_000, integer=True), "a whole number 1-10000"),
        "inter_trial_s": ("inter_trial_s", _within(0, 3600), "seconds, 0-3600"),
        "acquire_s": ("acquire_s", _within(0, 3600), "seconds, 0-3600 (0: wait as long as it takes)"),
    },
    "markers": {
        "outputs": ("marker_outputs", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                    'a list of marker output names, e.g. ["lsl"]'),
    },
    "source": {
        "name": ("source_name", lambda v: isinstance(v, str) and v != "",
                 "a response source name (see `compactrig sources list`)"),
        "options": ("source_options", lambda v: isinstance(v, dict), "a table of the source's options"),
    },
    "gate": {
        "name": ("gate_name", lambda v: isinstance(v, str) and v != "", 'a gate name: "always", "lsl" or "iohub"'),
        "options": ("gate_options", lambda v: isinstance(v, dict), "a table of the gate's options"),
    },
}
MARKER_OPTION_SECTION = "markers"
"""Keys under ``[markers.NAME]`` tables are that output's own options, except ``[markers.codes]``."""
CODES_TABLE = "codes"
"""``[markers.codes]``: the event-code table (no marker output may be named so)."""


def _frames(ms: float, refresh_hz: float, key: str, problems: list[str]) -> int | None:
    frames = ms * refresh_hz / 1000
    if abs(frames - round(frames)) > 1e-6:
        frame_ms = 1000 / refresh_hz
        problems.append(f"timing.{key} = {ms:g} is {frames:.3g} frames at {refresh_hz:g} Hz; use a multiple of "
                        f"{frame_ms:.4g} ms or give frames_{key[:-3]} instead")
        return None
    return round(frames)


def parse_rig(data: dict[str, Any], source: str = "rig file") -> RigConfig:
    """A ``RigConfig`` from parsed TOML; raises ``RigFileError`` listing every problem."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    marker_options: dict[str, Any] = {}
    codes: CodeTable | None = CodeTable()
    for section, table in data.items():
        if section not in SCHEMA:
            problems.append(f"unknown section [{section}]; known: {', '.join(f'[{s}]' for s in SCHEMA)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{section} must be a table ([{section}])")
            continue
        for key, value in table.items():
            if section == MARKER_OPTION_SECTION and key == CODES_TABLE:
                codes, wrong = parse_code_table(value)
                problems += [f"markers.codes: {problem}" for problem in wrong]
                continue
            if section == MARKER_OPTION_SECTION and isinstance(value, dict):
                marker_options[key] = value
                continue
            if key not in SCHEMA[section]:
                problems.append(f"unknown key {section}.{key}; known: {', '.join(SCHEMA[section])}")
                continue
            name, valid, hint = SCHEMA[section][key]
            if not valid(value):
                problems.append(f"{section}.{key} = {value!r}: expected {hint}")
                continue
            values[name] = tuple(value) if isinstance(value, list) else value
    refresh = values.get("refresh_hz", RigConfig.refresh_hz)
    for unit in ("on", "off"):
        if f"{unit}_ms" in values:
            if f"frames_{unit}" in values:
                problems.append(f"timing: give either {unit}_ms or frames_{unit}, not both")
            frames = _frames(values.pop(f"{unit}_ms"), refresh, f"{unit}_ms", problems)
            if frames is not None:
                values[f"frames_{unit}"] = frames
    if values.get("frames_on", 1) == 0:
        problems.append("timing: the image must be on for at least one frame")
    if CODES_TABLE in values.get("marker_outputs", ()):
        problems.append(f'markers.outputs: "{CODES_TABLE}" names the code table ([markers.codes]), not an output')
    rig = RigConfig(**values, marker_options=marker_options, event_codes=codes or CodeTable()) if not problems else None
    if rig is not None:
        problems += _geometry_problems(rig)
    if problems:
        raise RigFileError(source, problems)
    assert rig is not None  # made whenever there is no problem
    return rig


def _geometry_problems(rig: RigConfig) -> list[str]:
    problems = []
    half_w, half_h = rig.resolution[0] / 2, rig.resolution[1] / 2
    side = rig.drawn_image_px()
    x, y = rig.pixel_aligned_position(side)
    half = side / 2
    if abs(x) + half > half_w or abs(y) + half > half_h:
        problems.append(f"image: {rig.image_size_deg:g} deg at {list(rig.image_position_deg)} deg is drawn "
                        f"{side} px wide at {x:.0f},{y:.0f} px and does not fit the "
                        f"{rig.resolution[0]}x{rig.resolution[1]} screen; make it smaller or move it")
    if rig.photodiode_size_px * 2 > min(rig.resolution):
        problems.append(f"photodiode.size_px = {rig.photodiode_size_px} is too large for the screen")
    return problems


def load_rig(path: str | Path | None) -> RigConfig:
    """The rig file at ``path`` (validated), or the default rig when ``path`` is None."""
    if path is None:
        return RigConfig()
    path = Path(path)
    if path.is_dir():  # reading it fails differently on each system (IsADirectoryError, PermissionError)
        raise CompactRigError(f"{path} is a folder, not a rig file; give the rig's .toml file (one is written by "
                              "`compactrig rig init FILE`)")
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CompactRigError(f"{path}: no such rig file; write one with `compactrig rig init {path}`") from None
    except OSError as error:
        raise CompactRigError(f"{path}: the rig file cannot be read ({error.strerror or error}); check its "
                              "permissions") from None
    except UnicodeDecodeError as error:
        raise CompactRigError(f"{path}: not valid TOML ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise CompactRigError(toml_problem(str(path), path.read_text(), error)) from None
    return parse_rig(data, str(path))


def toml_error_line(error: tomllib.TOMLDecodeError) -> int | None:
    """The line (from 1) a TOML error is on, when the parser says."""
    found = re.search(r"at line (\d+)", str(error))
    return int(found.group(1)) if found else None


def toml_problem(where: str, text: str, error: tomllib.TOMLDecodeError) -> str:
    """One line for a rig text that is not TOML: the parser's words, and the line it is on quoted (an editor
    without line numbers, or a long file, would leave "line 17" to be counted)."""
    line = toml_error_line(error)
    lines = text.splitlines()
    quoted = f": line {line} reads {lines[line - 1].strip()!r}" if line and 0 < line <= len(lines) else ""
    return f"{where}: not valid TOML ({error}){quoted}"


DEFAULT_RIG_TEXT = """\
# CompactRig rig file. Sizes in degrees of visual angle; durations in frames at refresh_hz
# (or on_ms / off_ms, which must be a whole number of frames).

[screen]
index = 0               # which monitor (0 = primary)
fullscreen = false      # true at the rig
resolution = [1280, 720]
# position = [0, 0]     # top-left corner of the window (not full screen); leave out to centre it
refresh_hz = 60.0       # the monitor's refresh; the presenter measures it and warns if it differs
distance_cm = 57.0      # eye to screen
width_cm = 53.0         # visible width of the screen
# gamma = 2.2           # set to linearize a CRT/LCD (leave out to use the display as is)
background = 128        # grey level 0-255
# pace_frames = true    # only for displays without vsync (VMs, Xvfb, remote desktops): wait out each
                        # frame at refresh_hz so durations are real; never needed on a rig monitor

[image]
size_deg = 4.0          # image width; drawn at the nearest whole multiple of its 112 pixels
position_deg = [4.0, -3.0]  # image centre (x right, y up, from the fixation point at the screen
                        # centre): put it on the receptive field, clear of the fixation dot

[fixation]
size_deg = 0.2          # fixation dot diameter (0 hides it)
colour = [255, 0, 0]

[photodiode]
corner = "bottom-left"  # top-left, top-right, bottom-left, bottom-right, none
size_px = 40            # toggles white/black at each image onset

[timing]
frames_on = 6           # 100 ms at 60 Hz
frames_off = 6
images_per_trial = 5    # images per fixation
inter_trial_s = 0.5
acquire_s = 0.0         # the fixation point waits this long for fixation, then a time-out (0: no limit)

[markers]
outputs = ["none"]      # "lsl" sends one marker per onset, plus trial start and end; "serial",
                        # "parallel", "nidaq" or "labjack" send the event codes below as strobed
                        # digital words (README: "Event codes to the recording system")
# [markers.lsl]
# name = "CompactRigMarkers"
# source_id = "compactrig-markers"
# [markers.serial]      # an Arduino running BMI3D's strobed-word sketch
# port = "/dev/ttyACM0"
# [markers.codes]       # the event-code table; these are the defaults
# word_bits = 16
# trial_start = 1
# trial_end = 2
# image_offset = 3
# abort = 4             # then the reason's code, then the presentation's identity
# fixation_break = 5
# onset_first = 32768   # an onset is onset_first + its identity modulo onset_count
# onset_count = 32768
# identity = "order"    # or "image_index" (the image's index in the session's set)
# identity_words = 1    # more words carry larger identities (base onset_count, low digit first)
# [markers.codes.abort_reasons]
# fixation = 11
# stopped = 12
# dropped_frames = 13
# missing = 14
# markers = 15
# other = 16

[gate]                  # fixation control: "always", "lsl" (a 1/0 fixation-state stream) or
                        # "iohub" (an eye tracker through PsychoPy's ioHub: README)
name = "always"
# [gate.options]
# stream_name = "FixationState"

[source]                # where the recorded responses come from (`compactrig sources list`)
name = "simulated"
# [source.options]
# window_start_s = 0.05
# window_end_s = 0.15
"""


def with_small_window(text: str, rig: RigConfig, position: tuple[int, int]) -> str:
    """The rig file ``text`` changed to a window half the size at ``position`` (not full screen),
    comments kept. The width in cm halves with the pixels, so degrees stay degrees on the same monitor."""
    values = {"fullscreen": "false",
              "resolution": f"[{rig.resolution[0] // 2}, {rig.resolution[1] // 2}]",
              "width_cm": f"{rig.width_cm / 2:g}",
              "position": f"[{position[0]}, {position[1]}]"}
    lines = text.splitlines()
    section, screen_header = None, None
    for k, line in enumerate(lines):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            section = header.group(1).strip()
            if section == "screen":
                screen_header = k
            continue
        key = re.match(r"\s*#?\s*(\w+)\s*=", line)  # a commented-out key is filled in where it stands
        if section == "screen" and key and key.group(1) in values:
            lines[k] = f"{key.group(1)} = {values.pop(key.group(1))}  # small window (Rig view)"
    added = [f"{key} = {value}  # small window (Rig view)" for key, value in values.items()]
    if screen_header is None:
        lines[:0] = ["[screen]"] + added
    else:
        lines[screen_header + 1:screen_header + 1] = added
    return "\n".join(lines) + "\n"


def write_default_rig(path: str | Path) -> Path:
    """Write the commented default rig file (refusing to overwrite an existing file)."""
    path = Path(path)
    if path.exists():
        raise CompactRigError(f"{path}: already exists; choose another name or delete it first")
    path.write_text(DEFAULT_RIG_TEXT)
    return path
