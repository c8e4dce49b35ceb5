"""The ``parallel`` marker output: event codes on a parallel port's eight data pins, through ``psychopy.parallel``.

Here rather than in ``plugins/`` because PsychoPy is imported only in the presenter package (marker
outputs run in the presenter process), and only when the port is opened. A parallel port has eight
data pins (2-9, bit 0 on pin 2) and no strobe line PsychoPy drives, so each word is held on the pins for
``hold_s`` and the pins then return to 0: set the recording system to take a word when its inputs
change. Untested on hardware (no parallel port where CompactRig is tested).
"""

from __future__ import annotations

from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.code_outputs import EventCodeOutput, hold
from compactrig.plugins.sources.base import Option


class ParallelPortCodes(EventCodeOutput):
    """Words (8-bit code tables only) on a parallel port's data pins, each held ``hold_s`` then cleared."""

    max_word_bits = 8
    options = (
        Option("address", str, "0x0378", "the port: an address (Windows, e.g. 0x0378) or a device "
                                         "(Linux, e.g. /dev/parport0)"),
        Option("hold_s", float, 0.001, "how long each word stays on the pins before they return to 0, s",
               1e-6, 1.0),
    )

    def __init__(self, address: str = "0x0378", hold_s: float = 0.001) -> None:
        super().__init__()
        if not 0 < hold_s <= 0.01:
            raise CompactRigError(f"option hold_s = {hold_s:g}: expected a time in (0, 0.01] s")
        self.address, self.hold_s = address, hold_s
        self._port: Any = None

    def open(self) -> None:
        try:
            from psychopy import parallel
        except ImportError:
            raise CompactRigError("marker output 'parallel' needs PsychoPy's parallel module: pip install psychopy "
                                  "(and on Linux pyparallel)") from None
        try:
            address: Any = int(self.address, 16) if self.address.lower().startswith("0x") else self.address
            self._port = parallel.ParallelPort(address=address)
            self._port.setData(0)
        except Exception as error:  # noqa: BLE001 - each driver fails its own way
            raise CompactRigError(f"parallel port {self.address} could not be opened ({type(error).__name__}: "
                                  f"{error}); check [markers.parallel] address and the port's driver") from None

    def write_word(self, word: int) -> None:
        self._port.setData(word)
        hold(self.hold_s)
        self._port.setData(0)

    def close(self) -> None:
        self._port = None
