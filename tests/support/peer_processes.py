"""Starting the peer stand-ins (``tests/peers/``) as processes, and reading back what they did."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

PEERS = Path(__file__).resolve().parents[1] / "peers"
WINDOW_SAMPLES = (1500, 4500)
"""The default counting window (0.05-0.15 s) at the peer's 30 kHz, in samples."""
SAMPLE_RATE = 30000.0


MARKERS_AND_GATE = """[markers]
outputs = ["lsl"]
[markers.lsl]
name = "{markers}"
source_id = "{markers}"
[gate]
name = "lsl"
[gate.options]
stream_name = "{fixation}"
"""
"""A rig's onset markers on LSL stream ``markers`` (what the Open Ephys stand-in's photodiode follows) and its
fixation gate on LSL stream ``fixation`` (the eye tracker's): fill both with ``str.format``."""


def paced_rig(frames_on: int, frames_off: int, images_per_trial: int, extra: str = "") -> str:
    """A small rig whose frames last their nominal 1/60 s under Xvfb (``pace_frames``), so on-times are real."""
    return f"""[screen]
resolution = [400, 300]
width_cm = 40.0
pace_frames = true
[image]
size_deg = 3.0
position_deg = [3.0, 0.0]
[timing]
frames_on = {frames_on}
frames_off = {frames_off}
images_per_trial = {images_per_trial}
inter_trial_s = 0.1
""" + extra


def free_port_pair() -> int:
    """A port p with p and p + 1 free on loopback (the plugin's data and listening ports)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket() as second:
                second.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports")


def start_peer(script: str, *args: str) -> subprocess.Popen:
    """Start ``tests/peers/SCRIPT`` and wait for its ``ready`` line."""
    process = subprocess.Popen([sys.executable, str(PEERS / script), *args], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert line.startswith("ready"), f"{script} did not start: {line!r}"
    return process


def command(process: subprocess.Popen, word: str) -> None:
    process.stdin.write(word + "\n")
    process.stdin.flush()


def start_open_ephys(folder: Path, port: int, script: str = "open_ephys_zmq.py", **config) -> subprocess.Popen:
    """The plugin stand-in (or ``hostile_open_ephys.py``, the same framing with bad content) on ``port``."""
    settings = {"data_port": port, "log": str(folder / "open_ephys.log"),
                "units": [["Electrode 1", 1, 40.0, 0.0], ["Electrode 2", 0, 25.0, 0.0]], **config}
    path = folder / f"open_ephys_{port}.json"
    path.write_text(json.dumps(settings))
    return start_peer(script, str(path))


class OpenEphysLog:
    """What the plugin stand-in sent: sync pulses by presentation order, spikes per acquisition."""

    def __init__(self, path: Path) -> None:
        self.pulses: dict[int, tuple[int, int]] = {}
        self.spikes: dict[int, list[tuple[int, str]]] = {}
        self.units: set[str] = set()
        self.aborts: dict[int, str] = {}
        self.codes: list[tuple[int, int, int]] = []
        """(acquisition, sample, word) of every event-code strobe recorded, in order."""
        self.lost_codes: list[int] = []
        for line in path.read_text().splitlines():
            words = line.split()
            if words[0] == "ttl":
                self.pulses[int(words[5])] = (int(words[1]), int(words[2]))
            elif words[0] == "code":
                self.codes.append((int(words[1]), int(words[2]), int(words[3])))
            elif words[0] == "lostcode":
                self.lost_codes.append(int(words[1]))
            elif words[0] == "abort":
                self.aborts[int(words[1])] = words[2].replace("_", " ")
            elif words[0] == "spike":
                unit = f"{words[3].replace('_', ' ')}:{words[4]}"
                self.units.add(unit)
                self.spikes.setdefault(int(words[1]), []).append((int(words[2]), unit))

    def counts(self, order: int) -> dict[str, int]:
        """Spikes per unit in the window after presentation ``order``'s sync pulse, as the peer fired them."""
        return self.counts_after(*self.pulses[order])

    def spike_times(self, order: int, span: tuple[float, float]) -> dict[str, list[float]]:
        """Each unit's spikes over ``span`` around presentation ``order``'s sync pulse, s from it, as fired."""
        acquisition, pulse = self.pulses[order]
        times: dict[str, list[float]] = {unit: [] for unit in self.units}
        for sample, unit in self.spikes.get(acquisition, []):
            if span[0] <= (sample - pulse) / SAMPLE_RATE < span[1]:
                times[unit].append((sample - pulse) / SAMPLE_RATE)
        return times

    def counts_after(self, acquisition: int, pulse: int) -> dict[str, int]:
        """Spikes per unit in the window after sample ``pulse`` of ``acquisition``."""
        counts = {unit: 0 for unit in self.units}
        for sample, unit in self.spikes.get(acquisition, []):
            if pulse + WINDOW_SAMPLES[0] <= sample < pulse + WINDOW_SAMPLES[1]:
                counts[unit] += 1
        return counts
