"""Spikes from the Open Ephys GUI's ZMQ Interface plugin, as the plugin really sends them.

The plugin (open-ephys-plugins/zmq-interface, ``Source/ZmqInterface.cpp``) publishes on its data
port: per processing block, the block's TTL events and spikes, then one data message per selected
channel (``openephys_wire`` parses them). It lists a client while that client sends heartbeats
to data port + 1 (REQ/REP). Messages are received and time-stamped on a thread of their own, so a
runner busy elsewhere neither delays the stamps (the clock alignment depends on them) nor lets
the socket drop spikes.

Each acquisition run (message numbers restart at each start) gets its own ``Acquisition``: a
restart is noticed, windows it cut are given up (their images are shown again) and the clock is
learnt afresh. With ``sync_line`` set, onsets are matched to the rig's sync pulses recorded on
that TTL line (photodiode, or a digital output driven at each flip) and counted in sample numbers
from the pulse: exact, whatever the system's buffering latency. With ``code_strobe_line`` set, the
rig's event-code words are read off the digital lines (each strobe's TTL event carries every line's
state) and each onset is matched to its onset word by the identity the word carries
(``onset_words``), its window counted from the word: exact whatever the lags, and a lost or extra
word is named. Without either, onsets are placed by the arrival-lag clock (accurate to the
buffering latency, a few ms on a local network).

Bounded whatever the peer sends: message parts over ``MAX_FRAME_BYTES`` are refused by the socket
(ZMQ's MAXMSGSIZE: the connection is dropped, and the receive thread opens it again), messages
are parsed on the receive thread so only small parsed records wait (at most ``MAX_QUEUED``), at
most ``max_units`` units may be introduced (more are refused, told once), and malformed, implausible or surplus
messages are dropped and counted by reason (``dropped``, told through ``notices``) while the
windows in flight go on.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from typing import Any

import pylsl
import zmq

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.event_codes import CodeTable
from compactrig.plugins.sources.acquisition import Acquisition
from compactrig.plugins.sources.base import (
    SPIKE_OPTIONS,
    WINDOW_OPTIONS,
    Option,
    Presentation,
    Response,
    ResponseSource,
)
from compactrig.plugins.sources.dropped import DropCounter
from compactrig.plugins.sources.onset_words import Identities, OnsetWords
from compactrig.plugins.sources.openephys_wire import MAX_FRAME_BYTES, DataBlock, Message, TtlEvent, WireError, parse
from compactrig.plugins.sources.spike_buffer import KEEP_S, MAX_UNITS

CONNECT_WAIT_S = 2.0
"""How long a connection attempt waits for the plugin's first heartbeat answer."""
SILENCE_NOTICE_S = 1.0
"""Pending windows and no message for this long: tell the user acquisition seems stopped."""
MAX_QUEUED = 500_000
"""Parsed messages waiting for the runner at most (minutes of a busy probe); more are dropped, counted."""
MAX_NUMBER_JUMP = 1_000_000
"""A message number this far past the last one is forged, not messages lost."""
RESTART_WITHIN_S = 10.0
"""Message numbers beginning again mean a restart only if the sample is this close to a start."""
MAX_ANSWER_BYTES = 64 * 1024
"""Largest heartbeat answer read (the plugin's are a few words)."""
WORD_GROUP_S = 0.005
"""Code words closer than this are one group (an abort's three words leave the rig back to back)."""
TTL_LINES = 64
"""The TTL event's word holds 64 lines."""


class _Receiver(threading.Thread):
    """Owns the two sockets: drains the data socket as messages come, sends heartbeats."""

    def __init__(self, host: str, port: int, heartbeat_s: float) -> None:
        super().__init__(name="openephys-receiver", daemon=True)
        self.host, self.port, self.heartbeat_s = host, port, heartbeat_s
        self.messages: deque[tuple[float, Message | WireError]] = deque()
        """(arrival, parsed message or why it could not be read); kinds CompactRig does not use are left out."""
        self.overflowed = 0
        """Messages dropped because ``MAX_QUEUED`` were waiting."""
        self.disconnects = 0
        """Times the data connection dropped (a part over ``MAX_FRAME_BYTES``, or the network) and was renewed."""
        self.failure: str | None = None
        self.started = threading.Event()
        self.answered = threading.Event()
        """Set at the first heartbeat answer: only then is the plugin known to be there."""
        self._stopping = threading.Event()
        self._identity = str(uuid.uuid4())

    def _open_data(self, context: zmq.Context) -> tuple[zmq.Socket, zmq.Socket]:
        """The data socket, and a monitor of its disconnections: ZMQ drops a peer that sends a part over
        MAXMSGSIZE and does not reconnect by itself, so this thread does."""
        data = context.socket(zmq.SUB)
        data.setsockopt(zmq.LINGER, 0)
        data.setsockopt(zmq.RCVHWM, 0)  # never drop: this thread drains it continuously
        data.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        monitor = data.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        data.connect(f"tcp://{self.host}:{self.port}")
        data.setsockopt(zmq.SUBSCRIBE, b"")
        return data, monitor

    def run(self) -> None:
        context: zmq.Context = zmq.Context.instance()
        beats = context.socket(zmq.REQ)
        data = monitor = None
        try:
            beats.setsockopt(zmq.LINGER, 0)
            beats.setsockopt(zmq.MAXMSGSIZE, MAX_ANSWER_BYTES)
            data, monitor = self._open_data(context)
            beats.connect(f"tcp://{self.host}:{self.port + 1}")
        except zmq.ZMQError as error:
            self.failure = f"cannot connect to Open Ephys at {self.host}:{self.port} ({error})"
            self.started.set()
            for socket in (beats, data, monitor):
                if socket is not None:
                    socket.close(0)
            return
        self.started.set()
        poller = zmq.Poller()
        for socket in (data, monitor, beats):
            poller.register(socket, zmq.POLLIN)
        sent_at, answered_at = None, float("-inf")
        try:
            while not self._stopping.is_set():
                ready = dict(poller.poll(20))
                if data in ready:
                    while True:
                        try:
                            frames = data.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._queue(pylsl.local_clock(), frames)
                if monitor in ready:
                    self.disconnects += 1
                    for socket in (data, monitor):
                        poller.unregister(socket)
                        socket.close(0)
                    data, monitor = self._open_data(context)
                    poller.register(data, zmq.POLLIN)
                    poller.register(monitor, zmq.POLLIN)
                now = pylsl.local_clock()
                if beats in ready:
                    beats.recv()
                    sent_at, answered_at = None, now
                    self.answered.set()
                if sent_at is None and now - answered_at >= self.heartbeat_s:
                    beats.send(json.dumps({"application": "CompactRig", "uuid": self._identity,
                                           "type": "heartbeat"}).encode())
                    sent_at = now
                elif sent_at is not None and now - sent_at > 3 * self.heartbeat_s:
                    self.failure = (f"Open Ephys at {self.host}:{self.port + 1} has not answered a heartbeat for "
                                    f"{3 * self.heartbeat_s:g} s; is the GUI running with the ZMQ Interface plugin?")
                    return
        finally:
            for socket in (data, monitor, beats):
                socket.close(0)

    def _queue(self, arrival: float, frames: list[bytes]) -> None:
        """Parse here, so only small records wait, and the payloads are freed at once."""
        message: Message | WireError | None
        try:
            message = parse(frames)
        except WireError as error:
            message = error
        except Exception as error:  # noqa: BLE001 - hostile bytes must not stop the receive thread
            message = WireError(f"a message the parser could not read ({type(error).__name__})")
        if message is None:
            return
        if len(self.messages) >= MAX_QUEUED:
            self.overflowed += 1
            return
        self.messages.append((arrival, message))

    def stop(self) -> None:
        self._stopping.set()


class OpenEphysSource(ResponseSource):
    name = "openephys"
    description = "spikes from the Open Ephys GUI's ZMQ Interface plugin"
    options = WINDOW_OPTIONS + SPIKE_OPTIONS + (
        Option("host", str, "127.0.0.1", "computer running the Open Ephys GUI"),
        Option("data_port", int, 5556, "the plugin's data port (heartbeats go to data_port + 1)", 1, 65534),
        Option("sample_rate", float, 30000.0, "sampling rate, Hz, until the plugin's data messages give it", 1.0, 1e6),
        Option("units", str, "", "comma-separated ELECTRODE:SORTED_ID units counted from the start "
                                 "(others are added when first heard from)"),
        Option("heartbeat_s", float, 2.0, "heartbeat interval, s", 0.1, 60.0),
        Option("latency_allowance_s", float, 0.1, "with no channel selected in the plugin (no data messages): "
                                                  "wait this long after a window for its spikes, s", 0.0, 10.0),
        Option("sync_line", int, -1, "TTL line recording the rig's sync pulse at each onset (photodiode or "
                                     "digital out); -1: align by arrival times", -1, 255),
        Option("sync_tolerance_s", float, 0.1, "largest distance between a flip and its sync pulse, s", 1e-6, 10.0),
        Option("code_strobe_line", int, -1, "TTL line of the rig's event-code strobe: onsets are matched to their "
                                            "code words by identity and counted from them; -1: off", -1, 255),
        Option("code_first_line", int, 0, "TTL line of the event-code word's lowest bit", 0, 255),
        Option("code_tolerance_s", float, 0.5, "largest distance between an onset's arrival-clock estimate and its "
                                               "code word, s", 1e-6, 60.0),
        Option("max_units", int, MAX_UNITS, "most units the plugin may introduce (more are refused)",
               1, 100_000),
    )

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        strobe, first = self.settings["code_strobe_line"], self.settings["code_first_line"]
        if not -1 <= strobe < TTL_LINES or not 0 <= first < TTL_LINES:
            raise CompactRigError(f"code_strobe_line (-1 or 0-{TTL_LINES - 1}) and code_first_line "
                                  f"(0-{TTL_LINES - 1}) name TTL lines")
        if strobe >= 0 and self.settings["sync_line"] >= 0:
            raise CompactRigError("set sync_line (photodiode pulses) or code_strobe_line (event-code words), not both")
        self._identities: Identities | None = None
        """The session's code table and image numbering while onsets are matched to their words."""
        self._units = self.declared_units
        self._receiver: _Receiver | None = None
        self._acquisitions: list[Acquisition] = []
        self._pending: list[Presentation] = []
        self._starts: dict[int, tuple[Acquisition, float]] = {}
        """Presentation -> (its acquisition, its onset sample): fixed once its sync pulse is claimed."""
        self._sync_offsets: dict[int, float] = {}
        self._notices: list[str] = []
        self.dropped = DropCounter()
        self._lost = self._overflow_told = self._disconnects_told = 0
        self._silence_told = False

    @property
    def units(self) -> list[str]:
        return list(self._units)

    def connect(self) -> None:
        self.close()
        self._receiver = _Receiver(self.settings["host"], self.settings["data_port"], self.settings["heartbeat_s"])
        self._receiver.start()
        self._receiver.started.wait(5.0)
        wait = min(3 * self.settings["heartbeat_s"], CONNECT_WAIT_S)
        if not self._receiver.failure and not self._receiver.answered.wait(wait):
            self.close()
            raise ConnectionError(f"Open Ephys at {self.settings['host']}:{self.settings['data_port'] + 1} did not "
                                  f"answer a heartbeat within {wait:g} s; start the GUI with the ZMQ Interface "
                                  "plugin in its signal chain, or check host and data_port")
        if self._receiver.failure:
            raise ConnectionError(self._receiver.failure)

    @property
    def matches_codes(self) -> bool:
        return self.settings["code_strobe_line"] >= 0

    def use_codes(self, codes: CodeTable) -> None:
        if not self.matches_codes:
            return
        first, strobe = self.settings["code_first_line"], self.settings["code_strobe_line"]
        if first + codes.word_bits > TTL_LINES or first <= strobe < first + codes.word_bits:
            last = first + codes.word_bits - 1
            raise CompactRigError(f"the {codes.word_bits}-bit code word on TTL lines {first}-{last} must fit lines "
                                  f"0-{TTL_LINES - 1} and leave out code_strobe_line {strobe}")
        self._identities = Identities(codes)

    def prepare(self, image_ids: list[str], pixels: Any) -> None:
        if self._identities is not None:
            self._identities.learn(image_ids)

    def submit(self, presentation: Presentation) -> None:
        self._pending.append(presentation)

    def cancel(self, order: int) -> None:
        cancelled = [p for p in self._pending if p.order == order]
        self._pending = [p for p in self._pending if p.order != order]
        if self._starts.pop(order, None) is None and self._identities is not None:
            for shown in cancelled:  # its word may come: expected, not an extra
                acquisition, _ = self._acquisition_for(shown.onset_time)
                if acquisition is not None and acquisition.words is not None:
                    acquisition.words.forgive(self._identities.of(shown), acquisition.to_sample(shown.onset_time),
                                              self.settings["code_tolerance_s"] * acquisition.rate)

    def notices(self) -> list[str]:
        told, self._notices = self._notices + self.dropped.notices(), []
        return told

    def collect(self, now: float) -> list[Response]:
        receiver = self._receiver
        if receiver is None or receiver.failure or not receiver.is_alive():
            raise ConnectionError(receiver.failure if receiver and receiver.failure else "Open Ephys receiver stopped")
        while receiver.messages:
            arrival, message = receiver.messages.popleft()
            self._take(arrival, message)
        while self._overflow_told < receiver.overflowed:
            self._overflow_told += 1
            self.dropped.drop(f"messages beyond the {MAX_QUEUED} waiting (the runner fell behind)")
        while self._disconnects_told < receiver.disconnects:
            self._disconnects_told += 1
            self.dropped.drop(f"data connection dropped (a message part over {MAX_FRAME_BYTES // 2 ** 20} MiB, or "
                              "the network) and opened again", "messages lost meanwhile make their windows missing")
        ready = self._ready(now)
        self._tell_silence(now)
        return ready

    # messages ----------------------------------------------------------------------------------
    def _take(self, arrival: float, message: Message | WireError) -> None:
        if isinstance(message, WireError):
            self.dropped.drop("unreadable message from Open Ephys", str(message))
            return
        current = self._acquisitions[-1] if self._acquisitions else None
        if current is not None and current.last_message > 0 \
                and message.message_num > current.last_message + MAX_NUMBER_JUMP:
            self.dropped.drop("message number far ahead of the last (forged or corrupt)", str(message.message_num))
            return
        if current is None or self._restarted(current, message):
            if current is not None:
                self._notices.append("Open Ephys acquisition restarted (message numbers began again): windows it "
                                     "cut are shown again, and the clock is learnt afresh")
            current = Acquisition(self.settings["sample_rate"], arrival)
            if self._identities is not None:
                current.words = OnsetWords(self._identities.codes, WORD_GROUP_S * current.rate)
            self._acquisitions.append(current)
        elif 0 < message.message_num <= current.last_message or \
                (isinstance(message, DataBlock) and message.sample_num < current.covered - current.rate):
            self.dropped.drop("message from the past (numbers or samples went back without a restart)",
                              f"message {message.message_num}, sample {message.sample_num}")
            return
        if isinstance(message, DataBlock) and message.sample_rate != current.rate:
            if current.covered >= 0:
                self._refuse(current, "data block with another sample rate mid-acquisition (forged or corrupt)",
                             f"{message.sample_rate:g} Hz")
                return
            current.set_rate(message.sample_rate)  # the first data block gives the stream's rate
        sample = message.end_sample if isinstance(message, DataBlock) else message.sample_num
        doubt = current.plausible(arrival, sample, not isinstance(message, DataBlock))
        if doubt:
            self._refuse(current, doubt, f"message {message.message_num}, sample {sample}")
            return
        gap = message.message_num - current.last_message - 1 - current.refused_since
        if gap > 0 and current.last_message > 0:
            self._lost += gap
            current.lost(sample)
            self._notices.append(f"{self._lost} message(s) from Open Ephys lost in transit so far (the windows "
                                 "they fell in are shown again); check the network and the GUI's load")
        current.last_message, current.refused_since = max(current.last_message, message.message_num), 0
        current.last_sample = sample
        if isinstance(message, DataBlock):
            current.observe(arrival, message.end_sample, data=True)
            current.cover(arrival, message.end_sample)
        elif isinstance(message, TtlEvent):
            current.observe(arrival, message.sample_num, data=False)
            current.add_ttl(message.sample_num, message.line)
            if current.words is not None and message.line == self.settings["code_strobe_line"] and message.state:
                self._take_word(current.words, message)
        elif message.unit in self._units or len(self._units) < self.settings["max_units"]:
            current.observe(arrival, message.sample_num, data=False)
            current.add_spike(message.sample_num, message.unit)
            if message.unit not in self._units:
                self._units.append(message.unit)
        else:
            self.dropped.drop(f"spikes of units beyond max_units = {self.settings['max_units']} (new units refused; "
                              "raise max_units if the recording really has more)", message.unit, once=True)

    def _take_word(self, words: OnsetWords, strobe: TtlEvent) -> None:
        """The code word on the lines at a strobe's rising edge."""
        if strobe.word is None:
            self.dropped.drop("strobe TTL event without the lines' word (a 2-byte payload): no code read",
                              f"message {strobe.message_num}")
            return
        lines = strobe.word >> self.settings["code_first_line"]
        words.add(strobe.sample_num, lines & (2 ** words.codes.word_bits - 1))

    def _refuse(self, current: Acquisition, reason: str, detail: str) -> None:
        """Drop a numbered message that is not believed (its number is not counted as lost in transit)."""
        current.refused_since += 1
        self.dropped.drop(reason, detail)

    def _restarted(self, current: Acquisition, message: Message) -> bool:
        """Message numbers began again, at a sample near an acquisition's start."""
        numbers_again = 0 < message.message_num <= current.last_message
        return numbers_again and message.sample_num < RESTART_WITHIN_S * current.rate

    # windows -----------------------------------------------------------------------------------
    def _acquisition_for(self, onset: float) -> tuple[Acquisition | None, bool]:
        """The acquisition an onset fell in, and whether a later one has begun since."""
        for k in range(len(self._acquisitions) - 1, -1, -1):
            if self._acquisitions[k].to_time(0) <= onset + self.window[0]:
                return self._acquisitions[k], k < len(self._acquisitions) - 1
        return None, bool(self._acquisitions)

    def _coded_onset(self, shown: Presentation, acquisition: Acquisition, later: bool) -> float | str | None:
        """The onset word's sample, None while it may still come, or why there is none."""
        assert self._identities is not None and acquisition.words is not None
        near = acquisition.to_sample(shown.onset_time)
        tolerance = self.settings["code_tolerance_s"] * acquisition.rate
        start = acquisition.words.claim(self._identities.of(shown), near, tolerance)
        if start is not None:
            self._starts[shown.order] = (acquisition, start)
            return start
        if later or acquisition.words.past_hope(near, tolerance):
            return (f"no onset word ({self._identities.words_text(shown)}) recorded within "
                    f"{self.settings['code_tolerance_s']:g} s of the onset: the word was lost, or the lines differ "
                    "from code_first_line/code_strobe_line")
        return None

    def _onset_sample(self, shown: Presentation, acquisition: Acquisition, later: bool) -> float | str | None:
        """The onset in sample numbers: its code word or sync pulse when matched so, else the arrival clock;
        None while its word or pulse may still come; text: why it cannot be placed."""
        if shown.order in self._starts:
            return self._starts[shown.order][1]
        if acquisition.words is not None:
            return self._coded_onset(shown, acquisition, later)
        line = self.settings["sync_line"]
        if line < 0:
            return acquisition.to_sample(shown.onset_time)
        key = id(acquisition)
        near = ((shown.onset_time - self._sync_offsets[key]) * acquisition.rate if key in self._sync_offsets
                else acquisition.to_sample(shown.onset_time))
        tolerance = self.settings["sync_tolerance_s"] * acquisition.rate
        if not later and acquisition.covered < near + tolerance:
            return None  # its pulse may still come
        pulse = acquisition.sync_pulse(line, near, int(tolerance))
        if pulse is None:
            self._notices.append(f"no sync pulse on TTL line {line} within {self.settings['sync_tolerance_s']:g} s "
                                 f"of presentation {shown.order}; counted on the arrival clock (check the "
                                 "photodiode and sync_line)")
            start = acquisition.to_sample(shown.onset_time)
        else:
            self._sync_offsets[key] = shown.onset_time - pulse / acquisition.rate
            start = float(pulse)
        self._starts[shown.order] = (acquisition, start)
        return start

    def _count_or_wait(self, shown: Presentation, now: float) -> Response | None:
        acquisition, later = self._acquisition_for(shown.onset_time)
        if acquisition is None:
            if later:
                return Response(shown.order, shown.image_id, None, self.window,
                                "Open Ephys was not acquiring when the image was shown")
            return None
        start = self._onset_sample(shown, acquisition, later)
        if start is None:
            return None
        if isinstance(start, str):
            return Response(shown.order, shown.image_id, None, self.window, start)
        rate, span = acquisition.rate, self.spike_span
        first, end = round(start + self.window[0] * rate), round(start + self.window[1] * rate)
        low, high = (round(start + span[0] * rate), round(start + span[1] * rate)) if span else (first, end)
        reach = max(end, high)
        if acquisition.covered >= 0:
            complete = acquisition.covered >= reach
        else:  # no channel selected in the plugin: no data blocks to tell completeness, wait by time
            complete = now >= acquisition.to_time(reach) + self.settings["latency_allowance_s"]
        if complete and acquisition.has_hole(min(first, low), reach):
            return Response(shown.order, shown.image_id, None, self.window,
                            "messages from Open Ephys were lost in transit during the window")
        if complete:
            spikes = acquisition.spike_times(low, high, start, self._units) if span else None
            return Response(shown.order, shown.image_id, acquisition.count(first, end, self._units), self.window,
                            spikes=spikes, span=span)
        if later:
            return Response(shown.order, shown.image_id, None, self.window,
                            "Open Ephys acquisition stopped or restarted during the window")
        return None

    def _decode_words(self, now: float) -> None:
        """Decode the code words nothing earlier can still join; name what makes no onset of the session."""
        for acquisition in self._acquisitions:
            words = acquisition.words
            if words is None:
                continue
            complete = acquisition.covered if acquisition.covered >= 0 else \
                acquisition.to_sample(now - self.settings["latency_allowance_s"])
            words.decode_until(complete)
            for problem in words.take_problems():
                self.dropped.drop("event-code words that make no event", problem)
            for extra in words.extras(complete - 2 * self.settings["code_tolerance_s"] * acquisition.rate):
                self.dropped.drop("onset words no presentation claimed", extra)

    def _ready(self, now: float) -> list[Response]:
        self._decode_words(now)
        done, waiting = [], []
        for shown in self._pending:
            response = self._count_or_wait(shown, now)
            if response is None:
                waiting.append(shown)
            else:
                done.append(response)
        self._pending = waiting
        for response in done:
            self._starts.pop(response.order, None)
        self._forget(now)
        return done

    def _forget(self, now: float) -> None:
        """Spikes older than every pending window (and than ``KEEP_S``); acquisitions nobody needs."""
        for acquisition in self._acquisitions:
            before = min(self.window[0], self.spike_span[0] if self.spike_span else 0.0)
            needed = [acquisition.to_sample(p.onset_time + before) for p in self._pending]
            acquisition.forget_before(min(needed + [acquisition.to_sample(now - KEEP_S)]) - acquisition.rate)
        while len(self._acquisitions) > 1 and self._acquisitions[0].last_arrival < now - KEEP_S and \
                all(self._acquisition_for(p.onset_time)[0] is not self._acquisitions[0] for p in self._pending):
            self._sync_offsets.pop(id(self._acquisitions.pop(0)), None)

    def _tell_silence(self, now: float) -> None:
        newest = self._acquisitions[-1].last_arrival if self._acquisitions else None
        silent = bool(self._pending) and newest is not None and now - newest > SILENCE_NOTICE_S
        if silent and not self._silence_told and newest is not None:
            self._notices.append(f"Open Ephys answers heartbeats but has sent nothing for {now - newest:.1f} s: "
                                 "is acquisition running?")
        self._silence_told = silent

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.stop()
            self._receiver.join(2.0)
        self._receiver = None
