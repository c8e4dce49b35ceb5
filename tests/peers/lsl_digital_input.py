"""A recording system's digital input, wired to the strobed-word board, streaming the words it stores over LSL.

Written from pylsl's examples (labstreaminglayer/pylsl @ e146d7d4ca2b5c6c3c274ea7fa4f23f851bed09d,
src/pylsl/examples/SendStringMarkers.py: an irregular-rate stream pushed sample by sample with explicit time
stamps; SendDataAdvanced.py: the source id): one int32 channel, the word on the data lines at each strobe,
stamped when the word was recorded. The wires are the board's log (``strobed_word_arduino.py`` logs each
strobe as ``word VALUE TIME``): a word is recorded ``WIRE_LATENCY`` after its strobe. The first strobe of each
word in LOSE is not recorded; that of each word in REPEAT is recorded twice, 2 ms apart (a bouncing strobe).
Every word pushed is appended to ``LOG`` as ``WORD TIME``, each lost one as ``lost WORD``.
Usage: python lsl_digital_input.py NAME BOARD_LOG LOG WIRE_LATENCY LOSE REPEAT (LOSE, REPEAT: comma lists or -)
"""

from __future__ import annotations

import sys
import time

import pylsl


def numbers(text: str) -> set[int]:
    return set() if text == "-" else {int(n) for n in text.split(",")}


def main() -> None:
    name, board_log, log_path, latency = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    lose, repeat = numbers(sys.argv[5]), numbers(sys.argv[6])
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_int32,
                                                 f"{name}-source"))
    position, due = 0, []
    with open(log_path, "a", buffering=1) as log:
        print("ready", flush=True)
        while True:
            try:
                with open(board_log) as board:
                    board.seek(position)
                    text = board.read()
            except FileNotFoundError:
                text = ""
            complete = text[:text.rfind("\n") + 1]
            position += len(complete)
            for line in complete.splitlines():
                fields = line.split()
                if fields[0] != "word":
                    continue
                word, when = int(fields[1]), float(fields[2]) + latency
                if word in lose:
                    lose.discard(word)
                    log.write(f"lost {word}\n")
                    continue
                due += [(when, word)] + ([(when + 0.002, word)] if word in repeat else [])
                repeat.discard(word)
            now = pylsl.local_clock()
            for when, word in [d for d in due if d[0] <= now]:
                outlet.push_sample([word], when)
                log.write(f"{word} {when:.9f}\n")
            due = [d for d in due if d[0] > now]
            time.sleep(0.002)


if __name__ == "__main__":
    main()
