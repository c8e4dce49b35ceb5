"""Marker outputs that send the rig's event codes as strobed digital words.

``EventCodeOutput`` turns each marker event into the code table's words (``event_codes``) and
records when each word went out (the presenter stores them beside the presentations); a subclass
only writes one word and strobes it. Built here: ``serial`` (an Arduino running the strobed-word
sketch BMI3D uses for Plexon, Blackrock and TDT digital inputs), ``nidaq`` (NI-DAQmx digital lines)
and ``labjack`` (a LabJack T-series through LJM); the parallel port's adapter is in
``rig/presenter/parallel_port.py``, PsychoPy's package being imported only there. Each imports its
device's library only when opened, and says which package to install when it is missing. A device
that cannot be opened is a one-line error before the first image; one that refuses a write raises,
which aborts the presentation and stops the session (resumable).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from typing import Any

import pylsl

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.event_codes import ONSET, CodeTable, SentWord
from compactrig.plugins.markers import MarkerOutput
from compactrig.plugins.sources.base import Option


class EventCodeOutput(MarkerOutput):
    """The code table's words for every event; subclasses implement ``write_word`` (and ``open``/``close``)."""

    sends_codes = True
    max_word_bits = 16
    """The widest word the device carries; a wider code table is refused when the presenter starts."""

    def __init__(self) -> None:
        super().__init__()
        self.codes = CodeTable()
        self._image_index: Mapping[str, int] = {}
        self._identities: dict[int, int] = {}
        """Presentation order -> the identity its onset words carried (what its abort words repeat)."""
        self._sent: list[SentWord] = []

    def write_word(self, word: int) -> None:
        """Put ``word`` on the lines and strobe it; raise when the device refuses."""
        raise NotImplementedError

    def use_codes(self, codes: CodeTable, image_index: Mapping[str, int]) -> None:
        if codes.word_bits > self.max_word_bits:
            raise CompactRigError(f"this device carries {self.max_word_bits}-bit words, the code table has "
                                  f"{codes.word_bits}-bit ones; set [markers.codes] word_bits = {self.max_word_bits} "
                                  "(and codes that fit)")
        self.codes, self._image_index = codes, image_index

    def check_images(self, image_ids: list[str]) -> None:
        if self.codes.identity == "image_index":
            for image_id in image_ids:
                self.codes.identity_of(0, self._image_index.get(image_id))

    def _send(self, event: str, words: tuple[int, ...], order: int | None = None, trial: int | None = None) -> None:
        for word in words:
            sent = pylsl.local_clock()
            self.write_word(word)
            self._sent.append(SentWord(event, word, sent, order, trial))

    def trial_start(self, trial_id: int, timestamp: float) -> None:
        self._send("trial_start", self.codes.encode("trial_start"), trial=trial_id)

    def onset(self, order: int, trial_id: int, image_id: str, timestamp: float) -> None:
        identity = self.codes.identity_of(order, self._image_index.get(image_id))
        self._identities[order] = identity
        self._send(ONSET, self.codes.encode(ONSET, identity), order, trial_id)

    def image_offset(self, order: int, trial_id: int, image_id: str, timestamp: float) -> None:
        self._send("image_offset", self.codes.encode("image_offset"), order, trial_id)

    def trial_end(self, trial_id: int, timestamp: float) -> None:
        self._send("trial_end", self.codes.encode("trial_end"), trial=trial_id)

    def fixation_break(self, timestamp: float) -> None:
        self._send("fixation_break", self.codes.encode("fixation_break"))

    def abort(self, order: int, reason: str, timestamp: float, kind: str = "missing") -> None:
        identity = self._identities.pop(order, order if self.codes.identity == "order" else None)
        if identity is not None:  # an image-index abort for an onset this output never sent has nothing to name
            self._send("abort", self.codes.encode("abort", identity, kind), order)

    def sent_words(self) -> list[SentWord]:
        sent, self._sent = self._sent, []
        return sent


def hold(seconds: float) -> None:
    """Wait ``seconds`` (a strobe's width: below a millisecond, where ``time.sleep`` is too coarse)."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def missing_package(output: str, package: str, what: str) -> CompactRigError:
    return CompactRigError(f"marker output {output!r} needs {what}: pip install {package}")


RECORDING_PULSE_S = 0.25
"""After ``r`` the sketch holds its loop for its 200 ms recording pulse; words sent meanwhile would be late."""
WRITE_TIMEOUT_S = 0.1
"""A write the port has not taken by then (a board that stopped reading) is a failure."""


class SerialCodes(EventCodeOutput):
    """Words to an Arduino running BMI3D's strobed-word sketch, which drives the recording system's digital input.

    The protocol of carmenalab/brain-python-interface ``riglib/dio/arduino_dio_omniplex/arduino_dio_omniplex.ino``
    (commit a0e296a): ``d`` then the word as two bytes, low byte first (the sketch puts the low byte on pins
    32-39, the high byte on 40-47, then pulses the strobe on pin 48); ``r`` pulses the recording line (pin
    49) to start a recording, ``p`` stops it. The time stored with each word is when it was handed to the
    port's driver.
    """

    options = (
        Option("port", str, "", "the board's serial port, e.g. /dev/ttyACM0 or COM3"),
        Option("baudrate", int, 115200, "the sketch's Serial.begin rate", 300, 4_000_000),
        Option("start_recording", bool, True, "send 'r' at the start (the sketch pulses its recording line) "
                                              "and 'p' at the end"),
        Option("reset_wait_s", float, 2.0, "wait after opening the port before the first byte (an Arduino "
                                           "restarts when its port opens)", 0.0, 60.0),
    )

    def __init__(self, port: str = "", baudrate: int = 115200, start_recording: bool = True,
                 reset_wait_s: float = 2.0) -> None:
        super().__init__()
        if not port.strip():
            raise CompactRigError("option port is missing: the board's serial port, e.g. port = \"/dev/ttyACM0\"")
        if not 300 <= baudrate <= 4_000_000:
            raise CompactRigError(f"option baudrate = {baudrate}: expected 300-4000000 (the sketch uses 115200)")
        if not 0 <= reset_wait_s <= 30:
            raise CompactRigError(f"option reset_wait_s = {reset_wait_s:g}: expected 0-30 s")
        self.port, self.baudrate = port, baudrate
        self.start_recording, self.reset_wait_s = start_recording, reset_wait_s
        self._serial: Any = None  # a serial.Serial while open
        self._refusals: tuple[type[BaseException], ...] = (OSError,)

    def open(self) -> None:
        try:
            import serial
        except ImportError:
            raise missing_package("serial", "pyserial", "pyserial") from None
        self._refusals = (serial.SerialException, OSError)
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0, write_timeout=WRITE_TIMEOUT_S)
        except (serial.SerialException, OSError, ValueError) as error:
            raise CompactRigError(f"serial port {self.port!r} could not be opened ({error}); check that the board "
                                  "is plugged in and [markers.serial] port") from None
        time.sleep(self.reset_wait_s)
        if self.start_recording:
            self._write(b"r")
            time.sleep(RECORDING_PULSE_S)

    def _write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
        except self._refusals as error:
            raise CompactRigError(f"serial port {self.port!r} refused a write ({error}): the board was unplugged or "
                                  "stopped reading") from None

    def write_word(self, word: int) -> None:
        self._write(b"d" + struct.pack("<H", word))

    def close(self) -> None:
        if self._serial is None:
            return
        try:
            if self.start_recording:
                self._serial.write(b"p")
            self._serial.close()
        except Exception:  # noqa: BLE001 - the board may be gone; closing must not fail the presenter's exit
            pass
        self._serial = None


class NidaqCodes(EventCodeOutput):
    """Words on NI-DAQmx digital lines (``nidaqmx``; NI's driver installed), strobed on a line of their own.

    Untested on hardware (no card where CompactRig is tested): the thinnest adapter, one write of the word
    to the lines (lowest bit on the first line), then the strobe line high for ``strobe_s`` and low again.
    """

    options = (
        Option("lines", str, "Dev1/port0/line0:15", "the lines carrying the word, lowest bit first (NI-DAQmx)"),
        Option("strobe", str, "Dev1/port1/line0", "the strobe line"),
        Option("strobe_s", float, 0.0005, "how long the strobe stays high, s", 1e-6, 1.0),
    )

    def __init__(self, lines: str = "Dev1/port0/line0:15", strobe: str = "Dev1/port1/line0",
                 strobe_s: float = 0.0005) -> None:
        super().__init__()
        if not 0 < strobe_s <= 0.01:
            raise CompactRigError(f"option strobe_s = {strobe_s:g}: expected a width in (0, 0.01] s")
        self.lines, self.strobe, self.strobe_s = lines, strobe, strobe_s
        self._tasks: list[Any] = []

    def open(self) -> None:
        try:
            import nidaqmx
            from nidaqmx.constants import LineGrouping
        except ImportError:
            raise missing_package("nidaq", "nidaqmx", "NI-DAQmx's Python package (and NI's driver)") from None
        try:
            for lines in (self.lines, self.strobe):
                task = nidaqmx.Task()
                self._tasks.append(task)
                task.do_channels.add_do_chan(lines, line_grouping=LineGrouping.CHAN_FOR_ALL_LINES)
            self._tasks[1].write(False)
        except Exception as error:  # noqa: BLE001 - the driver's errors are many
            self.close()
            raise CompactRigError(f"NI-DAQmx lines {self.lines!r} / {self.strobe!r} could not be opened ({error}); "
                                  "check [markers.nidaq]") from None

    def write_word(self, word: int) -> None:
        words, strobe = self._tasks
        words.write(word)
        strobe.write(True)
        hold(self.strobe_s)
        strobe.write(False)

    def close(self) -> None:
        for task in self._tasks:
            try:
                task.close()
            except Exception:  # noqa: BLE001 - closing must not fail the presenter's exit
                pass
        self._tasks = []


LABJACK_WORD_LINES = 0xFFFF
"""FIO0-7 (bits 0-7) and EIO0-7 (bits 8-15) of LJM's ``DIO_STATE``."""
LABJACK_STROBE = 1 << 16
"""CIO0, bit 16 of ``DIO_STATE``."""


class LabJackCodes(EventCodeOutput):
    """Words on a LabJack T-series (``labjack-ljm``; LabJack's LJM library installed): the word on FIO0-7 and
    EIO0-7 (lowest bit on FIO0), the strobe on CIO0, as on a T7's DB15.

    Untested on hardware: the thinnest adapter, the lines made outputs once, then per word one write of
    ``DIO_STATE`` with the word, one with the strobe high, one with it low.
    """

    options = (
        Option("device", str, "ANY", "LabJack type: T4, T7, T8 or ANY"),
        Option("connection", str, "ANY", "USB, ETHERNET, WIFI or ANY"),
        Option("identifier", str, "ANY", "serial number, IP address or name; ANY: the first found"),
        Option("strobe_s", float, 0.0005, "how long the strobe stays high, s", 1e-6, 1.0),
    )

    def __init__(self, device: str = "ANY", connection: str = "ANY", identifier: str = "ANY",
                 strobe_s: float = 0.0005) -> None:
        super().__init__()
        if not 0 < strobe_s <= 0.01:
            raise CompactRigError(f"option strobe_s = {strobe_s:g}: expected a width in (0, 0.01] s")
        self.device, self.connection, self.identifier, self.strobe_s = device, connection, identifier, strobe_s
        self._ljm: Any = None
        self._handle: Any = None

    def open(self) -> None:
        try:
            from labjack import ljm
        except ImportError:
            raise missing_package("labjack", "labjack-ljm", "LabJack's LJM Python package (and the LJM library)") \
                from None
        used = LABJACK_WORD_LINES | LABJACK_STROBE
        self._ljm = ljm
        try:
            self._handle = ljm.openS(self.device, self.connection, self.identifier)
            ljm.eWriteNames(self._handle, 3, ["DIO_INHIBIT", "DIO_DIRECTION", "DIO_STATE"], [~used & 0x7FFFFF, used, 0])
        except Exception as error:  # noqa: BLE001 - LJMError and the library's load errors
            self.close()
            raise CompactRigError(f"LabJack {self.device} ({self.connection}, {self.identifier}) could not be opened "
                                  f"({error}); check [markers.labjack]") from None

    def write_word(self, word: int) -> None:
        self._ljm.eWriteName(self._handle, "DIO_STATE", word)
        self._ljm.eWriteName(self._handle, "DIO_STATE", word | LABJACK_STROBE)
        hold(self.strobe_s)
        self._ljm.eWriteName(self._handle, "DIO_STATE", word)

    def close(self) -> None:
        if self._handle is not None and self._ljm is not None:
            try:
                self._ljm.close(self._handle)
            except Exception:  # noqa: BLE001 - closing must not fail the presenter's exit
                pass
        self._handle = None
