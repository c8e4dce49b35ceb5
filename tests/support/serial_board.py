"""A strobed-word board on a pseudo-terminal pair: ``socat`` links the rig's end (the serial output's port) to
the board's end, where ``tests/peers/strobed_word_arduino.py`` reads the bytes as the sketch does."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from support.peer_processes import command, start_peer


def need_socat() -> None:
    """Skip without socat (fail under CI, which installs it: .ci/apt-packages.txt)."""
    if shutil.which("socat") is None:
        message = "needs socat for a pseudo-terminal pair (apt-get install socat)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


class SerialBoard:
    """The board plugged into ``port``: every word it strobed, with when, in ``log``."""

    def __init__(self, folder: Path, port: Path) -> None:
        need_socat()
        self.port, self.board, self.log = port, folder / f"board-{time.monotonic_ns()}", folder / "board.log"
        # wait-slave and -t 0: socat ends, and the rig's end fails its writes, as soon as the board's end is closed
        self.socat = subprocess.Popen(["socat", "-t", "0", f"pty,raw,echo=0,link={port}",
                                       f"pty,raw,echo=0,wait-slave,link={self.board}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (port.exists() and self.board.exists()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert port.exists() and self.board.exists(), "socat made no pseudo-terminal pair"
        self.peer = start_peer("strobed_word_arduino.py", str(self.board), str(self.log))

    def lines(self) -> list[list[str]]:
        return [line.split() for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def words(self) -> list[tuple[float, int]]:
        """(time strobed, word) for every word, in order (from every board plugged in at this log)."""
        return [(float(line[2]), int(line[1])) for line in self.lines() if line[0] == "word"]

    def unplug(self) -> None:
        """The board's end closes; socat ends with it, as a USB port goes when its cable is pulled."""
        command(self.peer, "unplug")
        assert self.peer.stdout.readline().strip() == "unplugged"
        self.peer.wait(5)
        self.socat.wait(5)

    def close(self) -> None:
        if self.peer.poll() is None:
            command(self.peer, "quit")
            self.peer.wait(5)
        if self.socat.poll() is None:
            self.socat.terminate()
            self.socat.wait(5)
