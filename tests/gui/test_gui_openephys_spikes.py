"""An Open Ephys session watched in the window: the Spikes page draws the focused unit's raster and PSTH
while the session runs, from the spikes the plugin sent, and they are the peer's spikes sample for sample.

The peer is the ZMQ Interface plugin's stand-in, ``tests/peers/open_ephys_zmq.py``, written from
open-ephys-plugins/zmq-interface @ 38513917d6a7ee5791a47029d624a1b6110b01ee, Source/ZmqInterface.cpp
(``sendSpikeEvent``, ``sendEvent``, ``sendData``): it fires a Poisson unit and toggles a TTL line at each
onset (a photodiode), and logs every spike and pulse it sent; the test reads that log, not CompactRig. The
eye tracker (``tests/peers/eye_tracker.py``) holds the trials until the peer watches the onsets."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from compactrig.stimuli.probes import colour_blob, dot_lattice, grating
from compactrig.stimuli.stimulus_set import StimulusRecord, StimulusSet

from support.peer_processes import (
    MARKERS_AND_GATE,
    OpenEphysLog,
    command,
    free_port_pair,
    paced_rig,
    start_open_ephys,
    start_peer,
)
from support.rig_view import set_up_rig
from support.sessions import stored_spikes
from support.user_input import click, click_row, open_tab, type_into

pytestmark = [pytest.mark.slow, pytest.mark.needs_display]

UNIT = "Electrode 1:1"
SOURCE = MARKERS_AND_GATE + """[source]
name = "openephys"
[source.options]
data_port = {port}
sync_line = 2
units = "{unit}"
"""


def test_an_open_ephys_session_draws_the_peers_spikes_live(qtbot, window, tmp_path, monkeypatch):
    stimuli = tmp_path / "set"
    StimulusSet([StimulusRecord(image_id=f"img{i}", kind="natural") for i in range(4)],
                np.stack([grating(0), grating(90), dot_lattice(), colour_blob((1, -1, 0))])).save(stimuli)
    port, markers = free_port_pair(), f"markers-gui-{os.getpid()}-{time.monotonic_ns()}"
    peer = start_open_ephys(tmp_path, port, marker_stream=markers, sync_line=2, latency_s=0.04,
                            units=[["Electrode 1", 1, 60.0, 0.0]])
    fixation = f"fixation-{markers}"
    tracker = start_peer("eye_tracker.py", fixation, "500", "0")  # no trial before the photodiode is watched
    rig, live = window.rig, window.live
    try:
        said: list[str] = []  # the peer says "watching" once the rig's onset markers are there (after Start)
        threading.Thread(target=lambda: said.append(peer.stdout.readline()), daemon=True).start()
        set_up_rig(qtbot, window, monkeypatch, paced_rig(12, 6, 2, SOURCE.format(markers=markers, port=port, unit=UNIT,
                                                                        fixation=fixation)),
                   tmp_path, stimuli, tmp_path / "session")
        type_into(qtbot, rig.unit_map, f"{UNIT}=demo:0")
        type_into(qtbot, rig.repeats, "5")
        finished: list[bool] = []
        rig.session_finished.connect(finished.append)
        click(qtbot, rig.start_button)
        qtbot.waitUntil(lambda: bool(said), timeout=60000)
        assert said[0].startswith("watching"), "the peer's photodiode follows the onsets"
        command(tracker, "fix")
        open_tab(qtbot, window.tabs, live)
        qtbot.waitUntil(lambda: live.table.rowCount() == 1, timeout=60000)
        click_row(qtbot, live.table, 0)
        open_tab(qtbot, live.pages, live.spikes)
        spikes = live.spikes
        qtbot.waitUntil(lambda: spikes.pages.currentIndex() == 1, timeout=60000)
        drawn_while_running = (rig.running(), live.live.rasters.n_presentations, len(spikes.raster.getData()[0]))
        qtbot.waitUntil(lambda: bool(finished), timeout=120000)
    finally:
        if rig.running():
            rig.stop_and_wait()
        for running in (peer, tracker):
            command(running, "quit")
            running.wait(5)
    assert finished == [True], rig.log.toPlainText()
    running, n_then, ticks_then = drawn_while_running
    assert running and 0 < n_then < 20 and ticks_then > 0, "drawn live, before the session ended"
    assert spikes.unit == UNIT and spikes.counted.text() == f"{UNIT} counted in the source's window (50..150 ms)"

    log, kept = OpenEphysLog(tmp_path / "open_ephys.log"), stored_spikes(tmp_path / "session")
    fired = [np.array(log.spike_times(order, (-0.1, 0.4))[UNIT]) for order in sorted(kept)]
    assert len(fired) == live.live.rasters.n_presentations >= 20
    x, _ = spikes.raster.getData()
    np.testing.assert_allclose(np.sort(x[::2]), np.sort(np.concatenate(fired)) * 1000, atol=1e-3,
                               err_msg="a tick per spike the peer fired, at its time (ms)")
    edges, rate = spikes.psth.getData()
    expected = np.histogram(np.concatenate(fired), bins=np.round(np.arange(-0.1, 0.4001, 0.01), 3))[0]
    one_spike = 1 / (len(fired) * 0.01)
    np.testing.assert_allclose(rate, expected * one_spike, atol=one_spike + 1e-9,
                               err_msg="the PSTH is the peer's spikes per 10 ms bin, per presentation")
    assert rate.sum() == pytest.approx(expected.sum() * one_spike)
    assert edges[0] == pytest.approx(-100) and edges[-1] == pytest.approx(400)
