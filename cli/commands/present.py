"""``compactrig present``: show a stimulus set on the rig monitor."""

from __future__ import annotations

import argparse
import csv
import signal
import sys
import time
from pathlib import Path

from compactrig.cli.options import number
from compactrig.cli.outputs import check_apart, check_file, check_folder
from compactrig.engine.errors import CompactRigError
from compactrig.engine.files.safe_output import write_atomically
from compactrig.rig.presenter import protocol as msg
from compactrig.rig.presenter.capture import CAPTURED_FRAME
from compactrig.rig.presenter.client import Presenter
from compactrig.rig.presenter.refresh import RefreshCheck
from compactrig.rig.presenter.rig import load_rig
from compactrig.stimuli.trial_plan import make_plan

LOG_COLUMNS = ["order", "trial", "image_id", "onset_time", "offset_time", "frames_shown", "dropped_frames", "aborted"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("present", help="show a stimulus set on the rig monitor (PsychoPy)")
    parser.add_argument("--stimuli", type=Path, required=True, help="stimulus-set folder")
    parser.add_argument("--rig", type=Path, default=None, help="rig file (default: a 1280x720 window, 60 Hz)")
    parser.add_argument("--repeats", type=number(int, 1, 10_000), default=1,
                        help="times each image is shown (default 1)")
    parser.add_argument("--shuffle", action="store_true", help="shuffle each repeat block")
    parser.add_argument("--seed", type=number(int, 0, 2**32), default=None, help="seed for --shuffle")
    parser.add_argument("--log", type=Path, default=None, help="CSV with one row per onset (new, or --force)")
    parser.add_argument("--capture", type=Path, default=None,
                        help="save each image's first frame as DIR/NNNNN.png (presentation order; DIR new, empty "
                             "or an earlier capture, or --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --log file, and capture into a folder that holds other files "
                             "(none of them is replaced)")
    parser.set_defaults(run=run)


def is_capture(folder: Path) -> bool:
    """True when ``folder`` holds only frames an earlier ``--capture`` wrote (``NNNNN.png``)."""
    return all(CAPTURED_FRAME.fullmatch(entry.name) and entry.is_file() for entry in folder.iterdir())


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before anything is read or started, a ``--log`` that exists (without ``--force``) or lies in the
    stimulus set, and a ``--capture`` folder that holds other files (without ``--force``) or, among them, files
    named like frames (even with ``--force``: they are not an earlier capture's, and would be replaced)."""
    if args.log is not None:
        check_file(args.log, "--log", args.force, [args.stimuli])
    check_apart([("--log", args.log)], [("--capture", args.capture)])
    if args.capture is not None:
        check_folder(args.capture, "--capture", args.force, is_capture, "an earlier capture")
        if args.capture.is_dir() and not is_capture(args.capture):
            taken = sorted(p.name for p in args.capture.iterdir() if CAPTURED_FRAME.fullmatch(p.name))
            if taken:
                raise CompactRigError(f"--capture {args.capture}: {taken[0]} is there, among files that are not a "
                                      "capture's, and a frame would replace it; choose a new or empty folder")


def run(args: argparse.Namespace) -> int:
    check_outputs(args)
    rig = load_rig(args.rig)
    from compactrig.stimuli.stimulus_set import StimulusSet  # with the bank and PyTorch: only to present
    stimulus_set = StimulusSet.load(args.stimuli)
    plan = make_plan(stimulus_set.ids, args.repeats, rig.images_per_trial, args.shuffle, args.seed)
    if args.log is None:
        return _present(args, rig, stimulus_set, plan, None)

    def logged(path: Path) -> int | Exception:
        """The run with its log written to ``path`` (beside ``--log``, renamed onto it when the run ends). A run
        that fails after onsets were logged keeps them: its error is returned and raised once the log is in
        place; one that fails before any onset leaves an earlier ``--log`` file as it was."""
        with open(path, "w", newline="") as handle:
            log = csv.writer(handle)
            log.writerow(LOG_COLUMNS)
            header = handle.tell()
            try:
                return _present(args, rig, stimulus_set, plan, (handle, log))
            except Exception as error:  # raised again below, after the rename
                if handle.tell() == header:
                    raise
                return error

    outcome = write_atomically(args.log, logged)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _present(args: argparse.Namespace, rig, stimulus_set, plan, logging) -> int:
    """Show the plan; with ``logging`` (an open file and its CSV writer), one row per onset, flushed at once."""
    planned = sum(len(t.image_ids) for t in plan)
    log_handle, log = logging if logging is not None else (None, None)
    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    presenter = Presenter(rig).start()
    try:
        ready = presenter.wait_for(msg.Ready, timeout=60)
        refresh = RefreshCheck(ready.measured_refresh_hz, rig.refresh_hz, rig.pace_frames)
        if refresh.differs:
            print(f"warning: {refresh.line()}", file=sys.stderr)
        presenter.send(msg.LoadStimuli(stimulus_set.ids, stimulus_set.pixels))
        presenter.wait_for(msg.StimuliLoaded, timeout=60)
        presenter.send(msg.RunTrials(plan, str(args.capture) if args.capture else None))
        shown = dropped = 0
        abort_sent = False
        marker_failure = None
        while True:
            if interrupted and not abort_sent:
                presenter.send(msg.Abort())
                abort_sent = True
            for event in presenter.poll():
                if isinstance(event, msg.ImageDone):
                    shown += 1
                    dropped += event.dropped_frames
                    if log is not None and log_handle is not None:
                        log.writerow([event.order, event.trial_id, event.image_id, f"{event.onset_time:.6f}",
                                      f"{event.offset_time:.6f}", event.frames_shown, event.dropped_frames,
                                      int(event.aborted)])
                        log_handle.flush()
                elif isinstance(event, msg.TrialDone):
                    print(f"trial {event.trial_id}: {shown}/{planned} images shown, {dropped} dropped frames")
                elif isinstance(event, msg.MarkerFailed):
                    marker_failure = event.message  # the run ends at once: said with its end
                elif isinstance(event, msg.PresenterError):
                    print(f"presenter: {event.message}", file=sys.stderr)
                elif isinstance(event, msg.PresenterDied):
                    raise CompactRigError(f"the presenter process died (exit code {event.exitcode}); "
                                          f"{shown} onsets were logged")
                elif isinstance(event, msg.RunDone):
                    if marker_failure is not None:
                        raise CompactRigError(f"{marker_failure}; the run stopped after {event.images_shown} of "
                                              f"{planned} images")
                    state = "aborted" if event.aborted else "done"
                    print(f"{state}: {event.images_shown}/{planned} images shown, {dropped} dropped frames")
                    return 130 if event.aborted and interrupted else 0
            time.sleep(0.005)
    finally:
        signal.signal(signal.SIGINT, previous)
        presenter.shutdown()
