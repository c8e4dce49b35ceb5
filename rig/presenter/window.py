"""The presenter process: a PsychoPy window, frame-based timing, onsets on the LSL clock.

Runs only inside the child process started by ``compactrig.rig.presenter.client.Presenter`` (spawn):
PsychoPy is imported here and nowhere else. Durations are whole frames; each image's
onset is the time of its first flip, taken by ``Window.callOnFlip`` on
``pylsl.local_clock`` so stimulus times and recorded spikes share one clock; the marker
outputs are told from the same call, so an event code leaves at the flip that shows its
image. A marker output that fails is told nothing more, the run is aborted and no other
starts: nothing is shown without its marker. Frame intervals are recorded and dropped
frames counted per image and per trial. During a trial the process never waits for the
parent: it only peeks at the command queue between flips.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.markers import MarkerOutput
from compactrig.plugins.registry import make_marker_output
from compactrig.rig.presenter import protocol as msg
from compactrig.rig.presenter.capture import save_frame
from compactrig.rig.presenter.rig import RigConfig


@dataclass
class _RunState:
    aborted: bool = False
    paused: bool = False
    shutdown: bool = False
    flips_since_abort: int = 0


def check_screen(index: int) -> tuple[int, int]:
    """The size in pixels of screen ``index``; no display, or no such screen, is a one-line error."""
    import pyglet
    try:
        display = pyglet.canvas.get_display() if hasattr(pyglet, "canvas") else pyglet.display.get_display()
        screens = display.get_screens()
    except Exception as error:  # noqa: BLE001 - pyglet's errors differ per platform
        raise CompactRigError(f"no display to present on ({error}); run on the rig's desktop, or under "
                              "xvfb-run for a test") from None
    if index >= len(screens):
        raise CompactRigError(f"screen.index = {index}: this display has screens 0..{len(screens) - 1}; "
                              "set [screen] index in the rig file")
    return int(screens[index].width), int(screens[index].height)


class Stage:
    """The window and everything drawn on it."""

    def __init__(self, rig: RigConfig) -> None:
        check_screen(rig.screen_index)
        from psychopy import logging, monitors, visual
        logging.console.setLevel(logging.ERROR)
        self.rig = rig
        monitor = monitors.Monitor("compactrig", width=rig.width_cm, distance=rig.distance_cm)
        monitor.setSizePix(list(rig.resolution))
        grey = [rig.background] * 3
        placed = {"pos": list(rig.window_position)} if rig.window_position and not rig.fullscreen else {}
        self.win = visual.Window(size=list(rig.resolution), fullscr=rig.fullscreen, screen=rig.screen_index, **placed,
                                 monitor=monitor, units="pix", color=grey, colorSpace="rgb255", allowGUI=False,
                                 waitBlanking=True, gamma=rig.gamma, checkTiming=False)
        self.win.recordFrameIntervals = True
        self.win.refreshThreshold = 1.5 / rig.refresh_hz
        self.visual = visual
        self.images: dict[str, Any] = {}
        self.image_index: dict[str, int] = {}
        """Image id -> its index in the session's stimulus set (the order images were loaded in)."""
        self.fixation = None
        if rig.fixation_size_px > 0:
            self.fixation = visual.Circle(self.win, radius=rig.fixation_size_px / 2, pos=(0, 0), units="pix",
                                          fillColor=list(rig.fixation_colour), lineColor=None, colorSpace="rgb255")
        self.photodiode = None
        if rig.photodiode_corner != "none":
            side = rig.photodiode_size_px
            x = (rig.resolution[0] - side) / 2 * (-1 if "left" in rig.photodiode_corner else 1)
            y = (rig.resolution[1] - side) / 2 * (-1 if "bottom" in rig.photodiode_corner else 1)
            self.photodiode = visual.Rect(self.win, width=side, height=side, pos=(x, y), units="pix",
                                          fillColor=[0, 0, 0], lineColor=None, colorSpace="rgb255")
        self.photodiode_on = False

    def measured_refresh(self) -> float | None:
        rate = self.win.getActualFrameRate(nIdentical=10, nMaxFrames=120, nWarmUpFrames=10, threshold=1)
        return float(rate) if rate else None

    def load(self, image_ids: list[str], pixels) -> int:
        """Textures drawn at a whole multiple of the image's pixels, nearest-neighbour, on whole screen
        pixels: the animal sees exactly the PNG's pixels (``RigConfig.drawn_image_px``)."""
        from PIL import Image
        for image_id, p in zip(image_ids, pixels):
            self.image_index.setdefault(image_id, len(self.image_index))
            side = self.rig.drawn_image_px(p.shape[1])
            self.images[image_id] = self.visual.ImageStim(self.win, image=Image.fromarray(p), size=(side, side),
                                                          pos=self.rig.pixel_aligned_position(side), units="pix",
                                                          interpolate=False)
        return len(self.images)

    def toggle_photodiode(self) -> None:
        self.photodiode_on = not self.photodiode_on
        if self.photodiode is not None:
            self.photodiode.fillColor = [255, 255, 255] if self.photodiode_on else [0, 0, 0]

    def draw(self, image_id: str | None, fixation: bool) -> None:
        if image_id is not None:
            self.images[image_id].draw()
        if fixation and self.fixation is not None:
            self.fixation.draw()
        if self.photodiode is not None:
            self.photodiode.draw()


@dataclass
class _ShownImage:
    """An image whose frames are running: its ImageDone is sent at the flip that removes it."""

    order: int
    trial_id: int
    image_id: str
    onset_time: float
    dropped_before: int
    frames: int = 0
    on_frames_over: bool = False
    """Its on frames are drawn: the next flip takes it down (stamped as ``offset_time``)."""
    offset_time: float | None = None


class Presentation:
    """Runs trial lists on a ``Stage``, reporting to the parent through ``events``."""

    def __init__(self, stage: Stage, markers: dict[str, MarkerOutput], commands, events) -> None:
        self.stage, self.commands, self.events = stage, commands, events
        self.markers = dict(markers)
        """The marker outputs by name that still work (one that failed is removed)."""
        self.failed: list[str] = []
        """Why each failed output failed: while any did, no run starts."""
        self._marks_ok = False
        """Whether every marker output took every event of the last marked flip."""
        self.state = _RunState()
        self._up: _ShownImage | None = None
        """The image on screen (or in its off frames) whose removal flip has not been reported yet."""
        self._next_frame = 0.0
        """``pace_frames``: when the next frame may be flipped (``time.perf_counter``)."""

    def peek(self) -> None:
        """Handle whatever the parent sent, without waiting; a dead parent ends the run."""
        if not parent_alive():
            self.state.aborted = self.state.shutdown = True
            return
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            self.handle_during_run(command)

    def handle_during_run(self, command: Any) -> None:
        if isinstance(command, msg.Abort):
            self.state.aborted = True
            if command.fixation_break:
                self._tell("fixation_break", _now())
        elif isinstance(command, msg.Shutdown):
            self.state.aborted = self.state.shutdown = True
        elif isinstance(command, msg.Pause):
            self.state.paused = True
        elif isinstance(command, msg.Resume):
            self.state.paused = False
        elif isinstance(command, msg.Heartbeat):
            self.events.put(msg.HeartbeatReply(command.sequence, _now()))
        elif isinstance(command, msg.MarkAborted):
            self.mark_aborted(command)
        else:
            self.events.put(msg.PresenterError(f"{type(command).__name__} ignored: a run is in progress"))

    def mark_aborted(self, command: msg.MarkAborted) -> None:
        self._tell("abort", command.order, command.reason, _now(), command.kind)

    def _tell(self, event: str, *args: Any) -> bool:
        """Every working marker output told ``event`` (its method of that name, with ``args``); the words it
        sent go to the parent. One that raises is told nothing more and the run is aborted. True when there
        is an output and every one took it."""
        told = bool(self.markers)
        for name, output in list(self.markers.items()):
            failure = None
            try:
                getattr(output, event)(*args)
            except Exception as error:  # noqa: BLE001 - a device or a lab's plugin may fail any way
                failure = error
            try:
                words = output.sent_words()
            except Exception as error:  # noqa: BLE001 - as above
                words, failure = [], failure or error
            if words:
                self.events.put(msg.CodesSent(name, tuple(words)))
            if failure is not None:
                told = False
                self._failed(name, failure)
        return told

    def _failed(self, name: str, error: Exception) -> None:
        text = str(error) if isinstance(error, CompactRigError) else f"{type(error).__name__}: {error}"
        message = f"marker output {name!r} failed: {text}"
        output = self.markers.pop(name)
        self.failed.append(message)
        self.state.aborted = True
        self.events.put(msg.MarkerFailed(message, output=name))
        _close(output)

    def flip(self, stamp: bool = False, marks: tuple[tuple[str, tuple], ...] = ()) -> float | None:
        """Flip; with ``stamp``, ``marks`` or an image waiting for its removal, return the flip's LSL time.

        ``marks`` (marker events: a method name and its arguments before the time) are told to the marker
        outputs at this flip, from ``callOnFlip``, after the ``image_offset`` of an image it removes."""
        times: list[float] = []
        up = self._up
        removing = up is not None and up.on_frames_over and up.offset_time is None
        if up is not None and removing:
            marks = (("image_offset", (up.order, up.trial_id, up.image_id)),) + marks
        if stamp or marks:
            self.stage.win.callOnFlip(self._flipped, times, marks)
        self.stage.win.flip()
        if self.stage.rig.pace_frames:
            self._pace()
        if removing:
            assert self._up is not None
            self._up.offset_time = times[0]
        if self.state.aborted:
            self.state.flips_since_abort += 1
        self.peek()
        return times[0] if times else None

    def _flipped(self, times: list[float], marks: tuple[tuple[str, tuple], ...]) -> None:
        """Called by PsychoPy right after the flip: its time on the LSL clock, then the marker events."""
        times.append(_now())
        self._marks_ok = all([self._tell(event, *args, times[0]) for event, args in marks])

    def _pace(self) -> None:
        """No vsync: hold each frame until its nominal end, so frame counts are real durations."""
        import time
        period = 1.0 / self.stage.rig.refresh_hz
        now = time.perf_counter()  # just after this frame's flip
        if self._next_frame < now - period:
            self._next_frame = now  # the first frame after a pause between runs
        self._next_frame += period  # the earliest moment of the next flip
        if self._next_frame > now:
            time.sleep(self._next_frame - now)

    def run(self, command: msg.RunTrials) -> None:
        self.state = _RunState()
        missing = sorted({i for t in command.trials for i in t.image_ids} - set(self.stage.images))
        if missing:
            self.events.put(msg.PresenterError(f"image {missing[0]!r} was not loaded; load the stimulus set first"))
            self.events.put(msg.RunDone(aborted=True, images_shown=0))
            return
        if not self.failed:  # e.g. an image whose index the event codes cannot carry
            self._tell("check_images", sorted({i for t in command.trials for i in t.image_ids}))
        if self.failed:
            self.events.put(msg.RunDone(aborted=True, images_shown=0))
            return
        capture = Path(command.capture_dir) if command.capture_dir else None
        if capture is not None:
            capture.mkdir(parents=True, exist_ok=True)
        order = command.first_order
        for trial in command.trials:
            while self.state.paused and not self.state.aborted:
                try:
                    self.handle_during_run(self.commands.get(timeout=0.05))
                except queue.Empty:
                    pass
            if self.state.aborted:
                break
            order = self.run_trial(trial, order, capture)
        self.events.put(msg.RunDone(aborted=self.state.aborted, images_shown=order - command.first_order,
                                    frames_after_abort=self.state.flips_since_abort))

    def _finish_image(self, dropped_now: int) -> None:
        """The image that was up (and its off frames) is over: report its frames, drops and offset."""
        shown, self._up = self._up, None
        if shown is None:
            return
        assert shown.offset_time is not None, "the flip that removed the image is stamped"
        self.events.put(msg.ImageDone(shown.order, shown.trial_id, shown.image_id, shown.onset_time,
                                      shown.offset_time, shown.frames, dropped_now - shown.dropped_before,
                                      aborted=self.state.aborted, marker_sent=bool(self.markers)))

    def run_trial(self, trial, order: int, capture: Path | None) -> int:
        """Each image's on frames, then its off frames; then one blank frame that ends the trial."""
        rig, stage, win = self.stage.rig, self.stage, self.stage.win
        # the wait before a trial (for fixation, for the runner) is no frame interval: turned on afresh, PsychoPy
        # does not count the interval up to the trial's first flip, which would otherwise be a dropped frame
        win.recordFrameIntervals = False
        win.recordFrameIntervals = True
        dropped_at_start = win.nDroppedFrames
        start_time = None
        shown = 0
        for position, image_id in enumerate(trial.image_ids):
            if self.state.aborted:
                break
            stage.toggle_photodiode()
            for frame in range(rig.frames_on):
                stage.draw(image_id, fixation=True)
                if frame == 0 and capture is not None:
                    win.getMovieFrame(buffer="back")
                    save_frame(capture, order, win.movieFrames.pop())
                dropped_before = win.nDroppedFrames
                marks: tuple[tuple[str, tuple], ...] = ()
                if frame == 0:
                    marks = ((("trial_start", (trial.trial_id,)),) if position == 0 else ()) + \
                        (("onset", (order, trial.trial_id, image_id)),)
                flipped = self.flip(stamp=frame == 0, marks=marks)
                if frame == 0:
                    assert flipped is not None, "a stamped flip has its time"
                    self._finish_image(dropped_before)  # the previous image's off frames end here
                    self._up = _ShownImage(order, trial.trial_id, image_id, flipped, dropped_before)
                    start_time = flipped if position == 0 else start_time
                    self._mark_onset(trial.trial_id, position, order, image_id, flipped)
                assert self._up is not None
                self._up.frames += 1
                if self.state.aborted:
                    break
            assert self._up is not None
            self._up.on_frames_over = True
            shown += 1
            order += 1
            for _ in range(rig.frames_off):
                if self.state.aborted:
                    break
                stage.draw(None, fixation=True)
                self.flip()
        stage.draw(None, fixation=False)
        dropped_before = win.nDroppedFrames
        end_time = self.flip(stamp=True, marks=(("trial_end", (trial.trial_id,)),))
        assert end_time is not None, "a stamped flip has its time"
        self._finish_image(dropped_before)
        self.events.put(msg.TrialDone(trial.trial_id, shown, win.nDroppedFrames - dropped_at_start,
                                      self.state.aborted, start_time, end_time))
        for _ in range(rig.inter_trial_frames - 1):
            if self.state.aborted:
                break
            stage.draw(None, fixation=False)
            self.flip()
        return order

    def _mark_onset(self, trial_id: int, position: int, order: int, image_id: str, timestamp: float) -> None:
        """The parent told of the onset (its markers went out at the flip: ``marker_sent`` if all did)."""
        if position == 0:
            self.events.put(msg.TrialStarted(trial_id, timestamp))
        self.events.put(msg.Onset(order, trial_id, image_id, timestamp, marker_sent=self._marks_ok))


def parent_alive() -> bool:
    """False once the process that started the presenter is gone (even by SIGKILL)."""
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _now() -> float:
    import pylsl
    return pylsl.local_clock()


def _open_markers(rig: RigConfig, session: dict[str, str], image_index: dict[str, int]) -> dict[str, MarkerOutput]:
    """The rig's marker outputs, opened (a failure closes those already open and is one line)."""
    outputs: dict[str, MarkerOutput] = {}
    try:
        for name in rig.marker_outputs:
            if name == "none":
                continue
            output = make_marker_output(name, rig.marker_options.get(name, {}))
            try:
                output.use_codes(rig.event_codes, image_index)
                output.describe(session)
                output.open()
            except CompactRigError as error:
                text = str(error)  # named once
                raise CompactRigError(text if text.startswith("marker output") else f"marker output {name!r}: {text}") \
                    from None
            except Exception as error:  # noqa: BLE001 - a lab's plugin may fail any way
                raise CompactRigError(f"marker output {name!r} could not start ({type(error).__name__}: {error}); "
                                      f"check [markers.{name}] in the rig file") from None
            outputs[name] = output
    except CompactRigError:
        for output in outputs.values():
            _close(output)
        raise
    return outputs


def _close(output: MarkerOutput) -> None:
    try:
        output.close()
    except Exception:  # noqa: BLE001 - a device already gone; closing must not stop the presenter's own exit
        pass


def presenter_main(rig: RigConfig, commands, events, session: dict[str, str] | None = None) -> None:
    """Entry point of the presenter process: open the window, then serve commands until Shutdown.

    Ctrl-C in a terminal reaches the whole process group; the parent decides what it means (a clean
    stop), so the presenter ignores it and keeps the log complete until told to shut down.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        stage = Stage(rig)
        markers = _open_markers(rig, session or {}, stage.image_index)
        events.put(msg.Ready(stage.measured_refresh(), (int(stage.win.size[0]), int(stage.win.size[1]))))
    except Exception as error:  # noqa: BLE001 - reported to the parent as one line, then exit
        text = str(error) if isinstance(error, CompactRigError) else f"{type(error).__name__}: {error}"
        events.put(msg.PresenterError(f"presenter could not start: {text}", fatal=True))
        return
    presentation = Presentation(stage, markers, commands, events)
    try:
        while not presentation.state.shutdown:
            try:
                command = commands.get(timeout=0.1)
            except queue.Empty:
                if not parent_alive():
                    break
                continue
            try:
                if isinstance(command, msg.LoadStimuli):
                    events.put(msg.StimuliLoaded(stage.load(command.image_ids, command.pixels)))
                elif isinstance(command, msg.RunTrials):
                    presentation.run(command)
                elif isinstance(command, msg.Shutdown):
                    break
                elif isinstance(command, msg.ShowFixation):
                    stage.draw(None, fixation=command.visible)
                    stage.win.flip()  # the screen keeps it until the next trial's first flip
                elif isinstance(command, msg.Heartbeat):
                    events.put(msg.HeartbeatReply(command.sequence, _now()))
                elif isinstance(command, (msg.MarkAborted, msg.Abort)):  # an abort just after its run ended
                    presentation.handle_during_run(command)
            except Exception as error:  # noqa: BLE001 - keep serving; the parent decides what to do
                events.put(msg.PresenterError(f"{type(command).__name__} failed: {type(error).__name__}: {error}"))
    finally:
        for marker in presentation.markers.values():
            _close(marker)
        stage.win.close()
