"""The serial event-code output in real sessions, against the strobed-word board's firmware on a pseudo-terminal.

The board (``tests/peers/strobed_word_arduino.py``, written from BMI3D's ``arduino_dio_omniplex.ino``)
logs every word it strobed and when, so what the recording system would store comes from the peer,
not from our encoder; it is decoded with the session's own code table and checked against the trial
store: every onset's identity word at its flip, in order, across a fixation break, a stop and a
resume; the abort and fixation-break codes; a board unplugged mid-session.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import time

import numpy as np
import pytest

from compactrig.plugins.event_codes import CodeTable
from compactrig.rig.session.folder import read_snapshot
from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.commands import compactrig_command
from support.peer_processes import command, paced_rig, start_peer
from support.serial_board import SerialBoard
from support.sessions import check_exactly_once, count_so_far, table

pytestmark = pytest.mark.needs_display

WITHIN_S = 0.002
"""An onset word leaves within 2 ms of its flip (``callOnFlip``) and arrives within 2 ms of the flip plus the
serial line's latency (measured from the data); on a loaded test machine a fifth may be late, none by a frame."""
FRAME_S = 1 / 60


@pytest.fixture()
def stimuli(tmp_path):
    folder = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(0), grating(90), dot_lattice(), colour_blob((1, -1, 0))])).save(folder)
    return folder


def session_rig(tmp_path, port, fixation=None) -> str:
    extra = f'[markers]\noutputs = ["serial"]\n[markers.serial]\nport = "{port}"\nreset_wait_s = 0.0\n'
    if fixation is not None:
        extra += f'[gate]\nname = "lsl"\n[gate.options]\nstream_name = "{fixation}"\n'
    rig = tmp_path / "rig.toml"
    rig.write_text(paced_rig(6, 3, 2, extra))
    return str(rig)


def wait_for(condition, process, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    assert condition(), process.communicate()[1] if process.poll() is not None else "timed out"


def shown(out) -> int:
    return count_so_far(out, "SELECT COUNT(*) FROM presentations")


def stored_words(out) -> list[tuple]:
    return table(out, "SELECT event, ord, word, sent_time FROM event_codes ORDER BY rowid")


@pytest.mark.slow
def test_every_onset_reaches_the_board_at_its_flip_in_order_across_a_fixation_break_a_stop_and_a_resume(
        tmp_path, stimuli, cli):
    port, out = tmp_path / "rig-port", tmp_path / "session"
    board = SerialBoard(tmp_path, port)
    fixation = f"fixation-{os.getpid()}-{time.monotonic_ns()}"
    tracker = start_peer("eye_tracker.py", fixation, "500", "1")
    rig = session_rig(tmp_path, port, fixation)
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", rig,
                                                  "--source", "simulated", "--repeats", "3", "--out", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: shown(out) >= 2, process)
        up = shown(out)
        wait_for(lambda: shown(out) > up, process)  # an image has just come up: the break falls while it is on
        command(tracker, "break")
        time.sleep(0.03)
        command(tracker, "fix")
        wait_for(lambda: count_so_far(out, "SELECT COUNT(*) FROM presentations WHERE abort_kind = 'fixation'"),
                 process)
        up = shown(out)
        wait_for(lambda: shown(out) > up, process)
        process.send_signal(signal.SIGINT)  # stops with the image on screen aborted
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        resumed = cli("session", "resume", str(out))
        assert resumed.returncode == 0, resumed.stderr
    finally:
        if process.poll() is None:
            process.kill()
        command(tracker, "quit")
        tracker.wait(5)
        board.close()
    check_exactly_once(out, 12)
    words = board.words()
    assert [w for w, in table(out, "SELECT word FROM event_codes ORDER BY rowid")] == [w for _, w in words], \
        "every word the board strobed is stored, in order, and nothing else"
    decoded = CodeTable().decode(words)
    assert decoded.strays == []
    presentations = table(out, "SELECT ord, onset_time, aborted, abort_kind FROM presentations ORDER BY ord")
    onsets = [e for e in decoded.events if e.event == "onset"]
    assert [e.identity for e in onsets] == [p[0] for p in presentations], "every onset's identity, in order"
    sent = {order: at for event, order, _, at in stored_words(out) if event == "onset"}
    timing = [(order, sent[order] - flip, onset.time - sent[order], onset.time - flip)
              for (order, flip, *_), onset in zip(presentations, onsets)]
    assert all(0 <= left < FRAME_S and 0 < latency < FRAME_S for _, left, latency, _ in timing), \
        "each onset word leaves at its flip and arrives before the next flip"
    latency = statistics.median(latency for _, _, latency, _ in timing)  # the serial line's, from the data
    on_time = [order for order, left, _, arrived in timing
               if left < WITHIN_S and abs(arrived - latency) < WITHIN_S]
    assert len(on_time) >= 0.8 * len(timing), (f"serial latency {latency * 1e3:.2f} ms; (order, left after flip, "
                                                f"latency, arrival after flip) in s: {timing}")
    aborted = {(order, kind) for order, _, was, kind in presentations if was}
    assert {(e.identity, e.reason) for e in decoded.events if e.event == "abort"} == aborted
    assert {kind for _, kind in aborted} == {"fixation", "stopped"}
    sequence = [e.event for e in decoded.events]
    breaks = [k for k, event in enumerate(sequence) if event == "fixation_break"]
    charged = [k for k, e in enumerate(decoded.events) if e.reason == "fixation"]
    assert breaks and charged and min(charged) > breaks[0], "the break's code, then the images it cost"
    assert len(breaks) <= len(table(out, "SELECT * FROM trials WHERE aborted = 1")), \
        "one break code per trial the gate broke (a loaded tracker may miss its 0.1 s deadline: another break)"
    assert sequence.count("trial_start") == sequence.count("trial_end") == len(table(out, "SELECT * FROM trials"))
    assert [line[:2] for line in board.lines() if line[0] == "recording"] == [["recording", "start"],
                                                                               ["recording", "stop"]] * 2
    assert read_snapshot(out)["rig"]["markers"]["codes"] == CodeTable().to_table(), "the table is in session.json"
    exported = cli("session", "export", str(out), "--nwb", str(tmp_path / "s.nwb"), "--age", "P8Y")
    assert exported.returncode == 0, exported.stderr
    from pynwb import NWBHDF5IO
    with NWBHDF5IO(str(tmp_path / "s.nwb"), "r") as io:
        written = io.read()
        shift = float(re.search(r"LSL clock time = NWB time - \((-?[0-9.]+)\)", written.notes).group(1))
        module = written.processing["compactrig"]
        sent = module["event_codes"].to_dataframe()
        assert list(sent["word"]) == [w for _, w in words]
        np.testing.assert_allclose(sent["time"] - shift, [t for *_, t in stored_words(out)], atol=2e-6)
        code_table = module["code_table"].to_dataframe().set_index("event")
        assert tuple(code_table.loc["onset"]) == (32768, 32768)
        assert code_table.loc["abort_reason:fixation", "first_code"] == 11


@pytest.mark.slow
def test_a_board_unplugged_mid_session_aborts_the_image_it_could_not_mark_and_stops_resumable(tmp_path, stimuli, cli):
    port, out = tmp_path / "rig-port", tmp_path / "session"
    board = SerialBoard(tmp_path, port)
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig",
                                                  session_rig(tmp_path, port), "--source", "simulated",
                                                  "--repeats", "3", "--out", str(out)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: shown(out) >= 3, process)
        board.unplug()
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        board.close()
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "marker output 'serial' failed: serial port" in stderr \
        and "refused a write" in stderr and "resume the session" in stderr, stderr
    rows = table(out, "SELECT ord, aborted, abort_kind FROM presentations ORDER BY ord")
    reached = [e.identity for e in CodeTable().decode(board.words()).events if e.event == "onset"]
    cut = [order for order, aborted, kind in rows if kind == "markers"]
    assert cut and cut[-1] == rows[-1][0], "the last image shown is the one the board could not mark"
    assert all(order in reached for order, _, _ in rows if order not in cut), "every other image had its onset code"
    assert len(rows) < 12 and count_so_far(out, "SELECT COUNT(*) FROM plan") == 12

    board = SerialBoard(tmp_path, port)  # plugged in again
    try:
        resumed = cli("session", "resume", str(out))
    finally:
        board.close()
    assert resumed.returncode == 0, resumed.stderr
    check_exactly_once(out, 12)
    onsets = [e.identity for e in CodeTable().decode(board.words()).events if e.event == "onset"]
    later = [order for order, in table(out, "SELECT ord FROM presentations ORDER BY ord") if order > rows[-1][0]]
    assert later and onsets[-len(later):] == later, "the resumed session's onsets reach the new board"
