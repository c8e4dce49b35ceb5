"""The Open Ephys source against the ZMQ Interface plugin's own bytes, from a separate process.

The peer (``tests/peers/open_ephys_zmq.py``) is written from the plugin's C++ code
(open-ephys-plugins/zmq-interface @ 38513917d6a7ee5791a47029d624a1b6110b01ee,
Source/ZmqInterface.cpp) and JUCE's JSON writer, and logs every spike and sync pulse it sent, so
expected counts come from the peer, not from our parser.
"""

from __future__ import annotations

import os
import signal
import time

import pylsl
import pytest

from compactrig.plugins.sources.base import Presentation
from compactrig.plugins.sources.guard import GuardedSource
from compactrig.plugins.sources.openephys import OpenEphysSource

from support.onsets import Onsets, pump_for
from support.peer_processes import (
    MARKERS_AND_GATE,
    OpenEphysLog,
    command,
    free_port_pair,
    paced_rig,
    start_open_ephys,
    start_peer,
)

pytestmark = pytest.mark.needs_display


@pytest.fixture()
def rig_peer(tmp_path):
    """The plugin stand-in with a photodiode on TTL line 2 and 40 ms of acquisition latency."""
    port, markers = free_port_pair(), f"markers-{os.getpid()}-{time.monotonic_ns()}"
    peer = start_open_ephys(tmp_path, port, marker_stream=markers, sync_line=2, latency_s=0.04)
    onsets = Onsets(markers)
    assert peer.stdout.readline().startswith("watching"), "the peer's photodiode follows the onsets"
    yield peer, port, onsets, tmp_path / "open_ephys.log"
    if peer.poll() is None:
        command(peer, "quit")
        peer.wait(5)


def check_exact(responses: list, log_path) -> None:
    log = OpenEphysLog(log_path)
    for response in responses:
        fired = log.counts(response.order)
        assert {u: int(c) for u, c in response.counts.items()} == {u: fired.get(u, 0) for u in response.counts}, \
            f"presentation {response.order}"
        assert set(fired) <= set(response.counts), "every unit the peer fired is counted"


def test_spikes_are_counted_exactly_from_the_sync_pulses_and_heartbeats_flow(rig_peer):
    peer, port, onsets, log = rig_peer
    guard = GuardedSource(OpenEphysSource(data_port=port, sync_line=2, heartbeat_s=0.2))
    guard.connect(pylsl.local_clock())
    pump_for(guard, 0.5)
    got = []
    for _ in range(12):
        onsets.show(guard)
        got += pump_for(guard, 0.25)
    got += pump_for(guard, 1.0)
    assert sorted(r.order for r in got) == list(range(12)) and all(r.counts is not None for r in got)
    check_exact(got, log)
    assert sum(sum(r.counts.values()) for r in got) > 0, "the units fired"
    assert not [m for m in guard.messages() if "no sync pulse" in m or "lost" in m]
    guard.close()


def test_the_arrival_clock_alone_places_windows_within_its_latency(tmp_path):
    """Without sync pulses, the window is placed by arrival lags: off by at most the buffering latency."""
    port = free_port_pair()
    peer = start_open_ephys(tmp_path, port, latency_s=0.002, units=[["Electrode 1", 1, 300.0, 0.0]])
    guard = GuardedSource(OpenEphysSource(data_port=port))
    guard.connect(pylsl.local_clock())
    pump_for(guard, 0.5)
    onsets, got = [], []
    for order in range(10):
        onsets.append(pylsl.local_clock())
        guard.submit(Presentation(order, 0, "img", onsets[-1]), onsets[-1])
        got += pump_for(guard, 0.2)
    got += pump_for(guard, 0.6)
    command(peer, "quit")
    peer.wait(5)
    log = OpenEphysLog(tmp_path / "open_ephys.log")
    t0 = float(next(line.split()[2] for line in (tmp_path / "open_ephys.log").read_text().splitlines()
                    if line.startswith("epoch 0")))
    times = [t0 + sample / 30000 for sample, _ in log.spikes[0]]
    for response in sorted(got, key=lambda r: r.order):
        onset = onsets[response.order]
        sure = sum(onset + 0.05 + 0.01 <= t < onset + 0.15 - 0.01 for t in times)
        possible = sum(onset + 0.05 - 0.01 <= t < onset + 0.15 + 0.01 for t in times)
        assert sure <= response.counts["Electrode 1:1"] <= possible


def test_an_acquisition_restart_gives_up_cut_windows_and_realigns(rig_peer):
    peer, port, onsets, log = rig_peer
    guard = GuardedSource(OpenEphysSource(data_port=port, sync_line=2, heartbeat_s=0.2, timeout_s=5.0))
    guard.connect(pylsl.local_clock())
    pump_for(guard, 0.5)
    got = []
    for _ in range(4):
        onsets.show(guard)
        got += pump_for(guard, 0.2)
    got += pump_for(guard, 0.4)  # the last window's data are sent (40 ms latency) before acquisition stops
    command(peer, "stop")
    time.sleep(0.1)
    cut = onsets.show(guard)  # shown while acquisition is stopped
    got += pump_for(guard, 0.6)
    command(peer, "start")  # sample and message numbers begin again at 0
    got += pump_for(guard, 0.5)
    for _ in range(6):
        onsets.show(guard)
        got += pump_for(guard, 0.2)
    got += pump_for(guard, 1.0)
    by_order = {r.order: r for r in got}
    assert sorted(by_order) == list(range(11))
    assert by_order[cut].counts is None and "stopped or restarted" in by_order[cut].missing
    counted = [r for r in got if r.counts is not None]
    assert len(counted) == 10, [(r.order, r.missing) for r in got if r.counts is None]
    check_exact(counted, log)
    assert {OpenEphysLog(log).pulses[r.order][0] for r in counted} == {0, 1}, "both acquisitions counted"
    assert any("acquisition restarted" in m for m in guard.messages())
    guard.close()


def test_a_stalled_runner_loses_no_spikes(tmp_path):
    """The receive thread drains the socket while nobody collects: 5 s of 8 busy units lose nothing."""
    port, markers = free_port_pair(), f"markers-stall-{os.getpid()}"
    units = [[f"Tetrode {k}", 1, 150.0, 0.0] for k in range(8)]
    peer = start_open_ephys(tmp_path, port, marker_stream=markers, sync_line=2, units=units, block_samples=256)
    onsets = Onsets(markers)
    assert peer.stdout.readline().startswith("watching")
    guard = GuardedSource(OpenEphysSource(data_port=port, sync_line=2, timeout_s=30.0))
    guard.connect(pylsl.local_clock())
    pump_for(guard, 0.5)
    for _ in range(5):
        onsets.show(guard)
        time.sleep(0.3)
    time.sleep(5.0)  # the runner is busy elsewhere
    got = pump_for(guard, 1.0)
    command(peer, "quit")
    peer.wait(5)
    assert sorted(r.order for r in got) == list(range(5))
    check_exact(got, tmp_path / "open_ephys.log")
    assert not [m for m in guard.messages() if "lost" in m]
    guard.close()


def test_the_plugin_dying_marks_pending_missing_and_its_return_is_picked_up(rig_peer, tmp_path):
    peer, port, onsets, log = rig_peer
    guard = GuardedSource(OpenEphysSource(data_port=port, sync_line=2, heartbeat_s=0.2, timeout_s=1.0))
    guard.connect(pylsl.local_clock())
    pump_for(guard, 0.5)
    onsets.show(guard)
    assert [r.counts is not None for r in pump_for(guard, 1.0)] == [True]
    os.kill(peer.pid, signal.SIGKILL)
    peer.wait(5)
    onsets.show(guard)
    lost = pump_for(guard, 1.5)
    assert len(lost) == 1 and lost[0].counts is None
    assert any("heartbeat" in m or "no response" in m for m in [lost[0].missing] + guard.messages())
    again = start_open_ephys(tmp_path, port, marker_stream=onsets.outlet.get_info().name(), sync_line=2,
                             latency_s=0.04, log=str(tmp_path / "second.log"))
    assert again.stdout.readline().startswith("watching")
    try:
        deadline = time.monotonic() + 15
        while not guard.connected and time.monotonic() < deadline:  # the guard's backoff, then a new connection
            pump_for(guard, 0.2)
        assert guard.connected, guard.messages()
        got = []
        for _ in range(4):
            onsets.show(guard)
            got += pump_for(guard, 0.25)
        got += pump_for(guard, 1.0)
        assert len(got) == 4 and all(r.counts is not None for r in got)
        check_exact(got, tmp_path / "second.log")
    finally:
        command(again, "quit")
        again.wait(5)
        guard.close()



@pytest.mark.slow
def test_a_session_against_the_plugins_bytes_stores_every_count_as_the_peer_fired_it(tmp_path):
    """Images on for 1.5 s; a unit first heard from mid-session; acquisition stopped and restarted;
    counted from the photodiode's sync pulses. Every stored count equals what the peer fired in that
    window (0 included), the windows the stop cut are shown again, and each of those got an abort marker."""
    import subprocess

    import numpy as np

    from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

    from support.commands import compactrig_command
    from support.sessions import count_so_far, counted_in, stored_spikes, table

    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(0), grating(90), dot_lattice(), colour_blob((1, -1, 0))])).save(stimuli)
    port, markers = free_port_pair(), f"markers-session-{os.getpid()}-{time.monotonic_ns()}"
    peer = start_open_ephys(tmp_path, port, marker_stream=markers, sync_line=2, latency_s=0.04,
                            units=[["Electrode 1", 1, 40.0, 0.0], ["Electrode 7", 3, 60.0, -1]])
    fixation = f"fixation-{markers}"
    tracker = start_peer("eye_tracker.py", fixation, "500", "0")  # no trial before the photodiode is watched
    rig = tmp_path / "rig.toml"
    rig.write_text(paced_rig(90, 6, 2, MARKERS_AND_GATE.format(markers=markers, fixation=fixation)))
    out = tmp_path / "session"
    process = subprocess.Popen(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                          "--source", "openephys", "--source-opt", f"data_port={port}",
                                          "--source-opt", "sync_line=2", "--source-opt", "units=Electrode 1:1",
                                          "--out", str(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def answered() -> int:
        return count_so_far(out, "SELECT COUNT(DISTINCT ord) FROM responses")

    def wait_for(condition, seconds=90.0):
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        assert condition(), process.stderr.read() if process.poll() is not None else "timed out"

    try:
        assert peer.stdout.readline().startswith("watching")
        command(tracker, "fix")
        wait_for(lambda: answered() >= 1)
        command(peer, "fire")  # Electrode 7:3 is heard from for the first time from now on
        wait_for(lambda: answered() >= 2)
        command(peer, "stop")
        time.sleep(1.8)  # longer than an image: some window falls while acquisition is stopped
        command(peer, "start")
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        for running in (peer, tracker):
            command(running, "quit")
            running.wait(5)
    assert process.returncode == 0, stderr
    log = OpenEphysLog(tmp_path / "open_ephys.log")
    rows = table(out, "SELECT p.ord, r.unit, r.count FROM presentations p JOIN responses r ON r.ord = p.ord "
                      "WHERE p.aborted = 0")
    complete = sorted({order for order, _, _ in rows})
    assert len(complete) == 4
    stored = {(order, unit): count for order, unit, count in rows}
    for order in complete:
        fired = log.counts(order)
        for unit in ("Electrode 1:1", "Electrode 7:3"):
            assert stored[(order, unit)] == fired.get(unit, 0), (order, unit)
    late = [stored[(order, "Electrode 7:3")] for order in complete]
    assert 0 in late and any(late), "zeros before the late unit was first heard, counts after"
    assert table(out, "SELECT unit, declared FROM units ORDER BY rowid") == [("Electrode 1:1", 1), ("Electrode 7:3", 0)]
    aborted = table(out, "SELECT ord, abort_reason FROM presentations WHERE aborted = 1")
    assert any("stopped or restarted" in reason or "not acquiring" in reason for _, reason in aborted), aborted
    assert all(order in log.aborts for order, _ in aborted), "each aborted presentation has an abort marker"
    assert {log.pulses[o][0] for o in complete} == {0, 1}, "counts from both acquisitions"
    onsets = [o for (o,) in table(out, "SELECT ord FROM presentations")]
    assert len(onsets) == len(set(onsets))

    # The spike times kept are the peer's, sample for sample, over the span around each sync pulse.
    kept = stored_spikes(out)
    assert set(complete) <= set(kept)
    for order in complete:
        span, trains = kept[order]
        assert span == (-0.1, 0.4)
        for unit, fired in log.spike_times(order, span).items():
            np.testing.assert_allclose(trains.get(unit, []), fired, atol=1e-6, err_msg=f"{order} {unit}")
    # A window adopted for one unit recounts it from those spikes; the other keeps the source's counts.
    adopted = subprocess.run(compactrig_command("session", "windows", str(out), "--unit", "Electrode 1:1",
                                                "--adopt", "60.01,160.01"), capture_output=True, text=True)
    assert adopted.returncode == 0, adopted.stderr
    assert "Electrode 1:1: counted 60.01..160.01 ms after the onset" in adopted.stdout
    counted = {(c.order, c.unit): c for c in counted_in(out)}
    for order in complete:
        fired = log.spike_times(order, (0.06001, 0.16001))["Electrode 1:1"]  # edges between samples
        assert counted[(order, "Electrode 1:1")].count == len(fired), order
        assert counted[(order, "Electrode 1:1")].window == pytest.approx((0.06001, 0.16001))
        assert counted[(order, "Electrode 7:3")].count == stored[(order, "Electrode 7:3")]
        assert not counted[(order, "Electrode 7:3")].adopted


@pytest.mark.slow
def test_windows_are_counted_from_the_recorded_code_words_matched_by_identity(tmp_path):
    """The rig's serial event codes go to the strobed-word board (``tests/peers/strobed_word_arduino.py``, from
    BMI3D's sketch), whose data and strobe pins are wired to the Open Ephys board's digital inputs: the peer
    records each strobe as the plugin's TTL events, each carrying every line's state (``TTLEvent``'s word).
    The acquisition's 40 ms of buffering and the wires' 25 ms would shift windows placed by the clock; matched
    by the identity each word carries, every stored count equals the peer's spikes counted from that
    presentation's own recorded word. The lost onset word makes its presentation missing with the reason (its
    image shown again), never counted from the next image's word, and a word strobed twice is named."""
    import subprocess

    import numpy as np

    from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

    from support.commands import compactrig_command
    from support.serial_board import SerialBoard
    from support.sessions import check_exactly_once, table

    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(0), grating(90), dot_lattice(), colour_blob((1, -1, 0))])).save(stimuli)
    board = SerialBoard(tmp_path, tmp_path / "rig-port")
    port = free_port_pair()
    peer = start_open_ephys(tmp_path, port, latency_s=0.04,
                            units=[["Electrode 1", 1, 60.0, 0.0], ["Electrode 2", 0, 40.0, 0.0]],
                            digital_input={"board_log": str(board.log), "first_line": 0, "strobe_line": 16,
                                           "wire_latency_s": 0.025, "lose": [32768], "repeat": [32770]})
    rig = tmp_path / "rig.toml"
    rig.write_text(paced_rig(9, 6, 2, f'[markers]\noutputs = ["serial"]\n[markers.serial]\nport = "{board.port}"\n'
                                      'reset_wait_s = 0.0\n'))
    out = tmp_path / "session"
    try:
        process = subprocess.run(compactrig_command("session", "run", "--stimuli", str(stimuli), "--rig", str(rig),
                                                    "--source", "openephys", "--source-opt", f"data_port={port}",
                                                    "--source-opt", "code_strobe_line=16",
                                                    "--source-opt", "units=Electrode 1:1,Electrode 2:0",
                                                    "--out", str(out)), capture_output=True, text=True, timeout=180)
    finally:
        command(peer, "quit")
        peer.wait(5)
        board.close()
    assert process.returncode == 0, process.stderr
    log = OpenEphysLog(tmp_path / "open_ephys.log")
    assert len(log.lost_codes) == 1 and log.lost_codes[0] >= 32768, "the lost word is an onset's (the README's table)"
    lost = log.lost_codes[0] - 32768
    aborted = dict(table(out, "SELECT ord, abort_reason FROM presentations WHERE aborted = 1"))
    assert "no onset word (32768)" in aborted[lost], aborted
    check_exactly_once(out, 4, n_units=2)
    recorded = [(epoch, sample, word - 32768) for epoch, sample, word in log.codes if word >= 32768]
    rows = table(out, "SELECT p.ord, r.unit, r.count FROM presentations p JOIN responses r ON r.ord = p.ord "
                      "WHERE p.aborted = 0")
    for order in sorted({o for o, _, _ in rows}):
        epoch, sample = next((e, s) for e, s, identity in recorded if identity == order)  # its first strobe
        fired = log.counts_after(epoch, sample)
        assert {u: c for o, u, c in rows if o == order} == {u: fired.get(u, 0) for u in ("Electrode 1:1",
                                                                                          "Electrode 2:0")}, order
    repeated = [identity for identity in {i for _, _, i in recorded} if [i for _, _, i in recorded].count(identity) > 1]
    assert len(repeated) == 1 and f"onset word of identity {repeated[0]} at" in process.stdout
    assert "(a word sent twice): ignored" in process.stdout
    assert sum(c for _, _, c in rows) > 0, "the units fired"


def run_against_a_silent_recording(tmp_path, n_images: int, *command_args: str):
    """``compactrig COMMAND_ARGS --stimuli SET --rig RIG --source openephys ...`` against the plugin stand-in
    acquiring with its one unit silent (never told to ``fire``), the eye tracker fixating: (process, stdout,
    stderr) once it ended."""
    import subprocess

    import numpy as np

    from compactrig.stimuli.probes import grating
    from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

    from support.commands import compactrig_command

    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(n_images)],
                np.stack([grating(18 * i) for i in range(n_images)])).save(stimuli)
    port, markers = free_port_pair(), f"markers-silent-{os.getpid()}-{time.monotonic_ns()}"
    peer = start_open_ephys(tmp_path, port, marker_stream=markers, sync_line=2, units=[["Electrode 1", 1, 40.0, -1]])
    fixation = f"fixation-{markers}"
    tracker = start_peer("eye_tracker.py", fixation, "500", "0")
    rig = tmp_path / "rig.toml"
    rig.write_text(paced_rig(9, 3, 2, MARKERS_AND_GATE.format(markers=markers, fixation=fixation)))
    process = subprocess.Popen(compactrig_command(*command_args, "--stimuli", str(stimuli), "--rig", str(rig),
                                                  "--source", "openephys", "--source-opt", f"data_port={port}",
                                                  "--source-opt", "sync_line=2"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert peer.stdout.readline().startswith("watching")
        command(tracker, "fix")
        stdout, stderr = process.communicate(timeout=150)
    finally:
        if process.poll() is None:
            process.kill()
        for running in (peer, tracker):
            command(running, "quit")
            running.wait(5)
    return process, stdout, stderr


def test_a_session_whose_recording_hears_no_unit_ends_with_its_images_left_out_and_says_why(tmp_path):
    """The plugin stand-in acquiring, its one unit silent: every response names no unit. Each presentation is
    missing with that reason, each image is left out after 3 tries, and the session ends saying so (it used to
    show the plan again forever: nothing was stored, so nothing was ever complete)."""
    from support.sessions import table

    out = tmp_path / "session"
    process, stdout, stderr = run_against_a_silent_recording(tmp_path, 2, "session", "run", "--out", str(out))
    assert process.returncode == 0, stderr
    assert "no unit heard yet (no spikes from any unit)" in stdout + stderr
    assert "2 plan item(s) left out after 3 missing responses each (images: img0, img1)" in stdout, stdout
    tries = table(out, "SELECT image_id, abort_kind, abort_reason FROM presentations ORDER BY ord")
    assert sorted(image for image, _, _ in tries) == ["img0"] * 3 + ["img1"] * 3
    assert all(kind == "missing" and "no unit heard yet" in reason for _, kind, reason in tries), tries
    assert table(out, "SELECT COUNT(*) FROM responses") == [(0,)]


def test_a_closed_loop_on_a_silent_recording_stops_in_one_line_once_its_images_are_left_out(tmp_path):
    """``loop run`` on the same silent recording: the images left out settle the plan, no readout can be fitted,
    and the command ends with one line saying why (exit 2) instead of waiting for a round that cannot start."""
    out = tmp_path / "session"
    process, stdout, stderr = run_against_a_silent_recording(tmp_path, 10, "loop", "run", "--out", str(out),
                                                             "--batch", "2")
    lines = [line for line in stderr.splitlines() if line.startswith("compactrig: error:")]
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    assert lines == [f"compactrig: error: {out}: the loop stopped after 0 of 1 round(s): no readout can be fitted "
                     "with the plan settled: no unit was heard (the plan's images were left out), and a readout "
                     "needs responses to 10; no round can start (the session's responses are kept in its folder)"], \
        stderr
    assert "10 plan item(s) left out after 3 missing responses each" in stdout, stdout
