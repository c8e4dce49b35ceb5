"""The Arduino strobed-word board BMI3D uses for Plexon, Blackrock and TDT digital inputs, on a serial port.

Written from the board's firmware, carmenalab/brain-python-interface @ a0e296aa663b49e767c9ebb274defb54b301eb12,
``riglib/dio/arduino_dio_omniplex/arduino_dio_omniplex.ino``, reading the bytes exactly as its ``loop()``
does: one character whenever one is available; ``'r'`` while not recording (``en == 0``) pulses the
recording line (pin 49) high for ``delay(200)``, during which nothing is read, and sets ``en``; ``'p'``
while recording raises the line, clears ``en`` and blinks the LED for ``delay(500)``; ``'d'`` calls
``handle_word()``: ``Serial.readBytes(dio_data, 2)`` (Arduino's default timeout, 1000 ms; bytes not read
keep their previous values), the first byte on data pins 32-39 (bits 0-7), the second on 40-47 (bits
8-15), then the strobe (pin 48) pulsed (``delay(0.5)`` truncates to 0 ms). Every other character is
ignored.

Each strobe is logged as ``word VALUE TIME``, TIME being ``pylsl.local_clock()`` as the strobe rises
(once the word's second byte has arrived); each recording-line pulse as ``recording start|stop TIME``;
a ``readBytes`` that timed out as ``short N TIME`` (N bytes came) before its word.

Usage: python strobed_word_arduino.py PORT LOG. Prints ``ready`` once the port is open. Commands on
stdin, one per line: ``unplug`` (the board's end of the line is closed at once: the cable pulled), ``quit``
(once the bytes already sent are read).
"""

from __future__ import annotations

import sys
import threading
import time

import pylsl
import serial

READ_BYTES_TIMEOUT_S = 1.0
"""``Serial.setTimeout``'s default, which ``readBytes`` waits at most."""


def main() -> None:
    port = serial.Serial(sys.argv[1], 115200, timeout=0.02)
    log = open(sys.argv[2], "a", buffering=1)
    unplug, quit = threading.Event(), threading.Event()

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip() == "unplug":
                break
            if line.strip() == "quit":
                quit.set()
                return
        unplug.set()

    threading.Thread(target=read_commands, daemon=True).start()
    en = 0
    dio_data = bytearray(2)
    print("ready", flush=True)
    while not unplug.is_set():
        c = port.read(1)  # Serial.available() >= 1, then Serial.read()
        if not c:
            if quit.is_set():
                break
            continue
        if c == b"r" and en == 0:
            log.write(f"recording start {pylsl.local_clock():.6f}\n")
            time.sleep(0.2)  # digitalWrite(rstart, HIGH); delay(200); digitalWrite(rstart, LOW)
            en = 1
        elif c == b"p" and en == 1:
            log.write(f"recording stop {pylsl.local_clock():.6f}\n")
            en = 0
            time.sleep(0.5)  # the LED's delay(500)
        elif c == b"d":
            port.timeout = READ_BYTES_TIMEOUT_S
            got = port.read(2)  # Serial.readBytes(dio_data, 2)
            port.timeout = 0.02
            dio_data[:len(got)] = got
            strobe = pylsl.local_clock()
            if len(got) < 2:
                log.write(f"short {len(got)} {strobe:.6f}\n")
            log.write(f"word {dio_data[0] | dio_data[1] << 8} {strobe:.6f}\n")
    port.close()
    log.close()
    print("unplugged", flush=True)


if __name__ == "__main__":
    main()
