"""The Rig view: edit and check the rig file, choose source, gate and markers, run a session.

The session is ``compactrig.rig.session.controller.SessionController`` (the same controller as
``compactrig session run``, its runner on a thread of its own); the buttons delegate to it. A 25 Hz
timer takes its typed events: lines go into the log (a ``trouble`` line into the status bar too), the
status is drawn here, and the rest is handed on (``events_arrived``) to the live fits, which read the
controller's live session.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QTextCursor, QTextFormat
from PyQt6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from compactrig.engine.errors import CompactRigError
from compactrig.gui.combo_box import ComboBox
from compactrig.gui.option_form import OptionForm
from compactrig.gui.presenter_placement import presenter_placement
from compactrig.gui.qt_parts import top_window
from compactrig.gui.recent_sessions import RecentSessionsBox
from compactrig.gui.worker import Job, JobList
from compactrig.plugins.registry import GATES, MARKER_OUTPUTS, RESPONSE_SOURCES, available, load_plugin, make_source
from compactrig.plugins.sources.base import parse_settings
from compactrig.rig.presenter.iohub_gate import calibrate
from compactrig.rig.presenter.refresh import RefreshCheck
from compactrig.rig.presenter.rig import (
    DEFAULT_RIG_TEXT,
    RigConfig,
    RigFileError,
    parse_rig,
    toml_error_line,
    toml_problem,
    with_small_window,
)
from compactrig.rig.session.controller import SessionController
from compactrig.rig.session.events import (
    RefreshMeasured,
    SessionEnded,
    SessionMessage,
    SessionStatus,
    StoredSessionShown,
)
from compactrig.rig.session.folder import SESSION_FILE
from compactrig.rig.session.recent import new_session_folder, sessions_root
from compactrig.rig.session.setup import SessionPlan
from compactrig.rig.session.unit_map import parse_unit_map
from compactrig.stimuli.stimulus_set import StimulusSet

FEED_INTERVAL_MS = 40
"""The status and live-fit redraw period (25 Hz)."""
TROUBLE_STYLE = "color: #b00020"
SHOW_ANYWAY = "Show the images anyway"


class PluginChoice(QWidget):
    """A plugin group's installed names in a combo box, and the chosen one's option form."""

    def __init__(self, group: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = group
        self.combo = ComboBox()
        self.combo.addItems(sorted(available(group)))
        self.form_holder = QVBoxLayout()
        self.form: OptionForm | None = None
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addLayout(self.form_holder)
        layout.addWidget(self.problem)
        self.combo.currentTextChanged.connect(self._chosen)

    def _chosen(self, name: str) -> None:
        self.choose(name, {})

    def choose(self, name: str, values: dict[str, Any]) -> None:
        """Show plugin ``name`` with ``values``; a plugin that fails to load is named, not fatal."""
        if self.combo.currentText() != name:
            self.combo.blockSignals(True)
            if self.combo.findText(name) < 0:
                self.combo.addItem(name)
            self.combo.setCurrentText(name)
            self.combo.blockSignals(False)
        if self.form is not None:
            self.form.deleteLater()
            self.form = None
        try:
            options = getattr(load_plugin(self.group, name), "options", ())
            self.problem.setText("")
        except CompactRigError as error:
            options = ()
            self.problem.setText(str(error))
        self.form = OptionForm(options, values)
        self.form_holder.addWidget(self.form)

    @property
    def name(self) -> str:
        return self.combo.currentText()

    def values(self) -> dict[str, Any]:
        return self.form.values() if self.form is not None else {}


class RigTab(QWidget):
    """Rig file, plugins, session controls and status."""

    message = pyqtSignal(str)
    events_arrived = pyqtSignal(list)
    session_finished = pyqtSignal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rig_path: Path | None = None
        self.session = SessionController()
        self.last_valid_source: tuple[str, dict[str, Any]] = ("simulated", {})
        """The source and options as they last validated (what the settings keep)."""
        self.closed = False
        """The window is closing: no stored session is read any more (widgets being torn down emit signals)."""

        self.rig_label = QLabel("default rig (not saved)")
        self.rig_text = QPlainTextEdit(DEFAULT_RIG_TEXT)
        self.rig_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.rig_problems = QLabel()
        self.rig_problems.setWordWrap(True)
        rig_buttons = QHBoxLayout()
        self.open_rig_button, self.save_rig_button = QPushButton("Open…"), QPushButton("Save as…")
        self.validate_button = QPushButton("Validate")
        self.open_rig_button.clicked.connect(self._open_rig)
        self.save_rig_button.clicked.connect(self._save_rig)
        self.validate_button.clicked.connect(self._validate_clicked)
        for button in (self.open_rig_button, self.save_rig_button, self.validate_button):
            rig_buttons.addWidget(button)
        rig_box = QGroupBox("Rig file")
        rig_layout = QVBoxLayout(rig_box)
        rig_layout.addWidget(self.rig_label)
        rig_layout.addLayout(rig_buttons)
        rig_layout.addWidget(self.rig_text, 1)
        rig_layout.addWidget(self.rig_problems)
        self.screen_notice = QLabel()
        self.screen_notice.setWordWrap(True)
        self.screen_notice.setStyleSheet("color: #8a4b00")
        self.small_window_button = QPushButton("Use a half-size window in the far corner")
        self.small_window_button.clicked.connect(self._use_small_window)
        rig_layout.addWidget(self.screen_notice)
        rig_layout.addWidget(self.small_window_button)
        self.screen_notice.hide()
        self.small_window_button.hide()

        self.source = PluginChoice(RESPONSE_SOURCES)
        self.unit_map = QLineEdit(  # type: ignore[call-overload]
            placeholderText="unit0=201025:2, … (empty: simulated units map to their neurons)")
        self.gate = PluginChoice(GATES)
        self.markers: dict[str, tuple[QGroupBox, OptionForm]] = {}
        plugins_box = QGroupBox("Response source, gate and marker outputs")
        plugins_layout = QFormLayout(plugins_box)
        plugins_layout.addRow("source", self.source)
        plugins_layout.addRow("unit map", self.unit_map)
        plugins_layout.addRow("gate", self.gate)
        self.calibrate_button = QPushButton("Calibrate eye tracker")
        self.calibrate_button.setToolTip("the calibration of the iohub gate's eye tracker, on the rig screen: "
                                         "space starts it, Escape aborts")
        self.calibrate_button.clicked.connect(self.calibrate)
        self.calibration: Job | None = None
        self.calibrations = JobList()
        plugins_layout.addRow("", self.calibrate_button)
        for name in sorted(available(MARKER_OUTPUTS)):
            box = QGroupBox(f"markers: {name}")
            box.setCheckable(True)
            try:
                form = OptionForm(getattr(load_plugin(MARKER_OUTPUTS, name), "options", ()))
            except CompactRigError as error:
                form = OptionForm(())
                box.setToolTip(str(error))
            QVBoxLayout(box).addWidget(form)
            self.markers[name] = (box, form)
            plugins_layout.addRow(box)

        self.stimuli_edit = QLineEdit(  # type: ignore[call-overload]
            placeholderText="stimulus-set folder (the Stimulus set view's saved set)")
        self.session_edit = QLineEdit()
        self.repeats = QSpinBox(minimum=1, maximum=1000, value=2)  # type: ignore[call-arg]
        self.hold_open = QCheckBox("keep running for queued images (closed loop)")
        self.hold_open.setToolTip("when the plan is done, wait for images queued from the Live fits view "
                                  "instead of ending; Abort ends the session")
        self.hold_open.toggled.connect(self._hold_open_changed)
        self.start_button = QPushButton("Start session")
        self.pause_button = QPushButton("Pause")
        self.abort_button = QPushButton("Abort")
        self.resume_button = QPushButton("Resume a session…")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.abort_button.clicked.connect(self.abort)
        self.resume_button.clicked.connect(self._resume_chosen)
        browse_stimuli = QPushButton("…")
        browse_stimuli.clicked.connect(self._choose_stimuli)
        stimuli_row = QHBoxLayout()
        stimuli_row.addWidget(self.stimuli_edit, 1)
        stimuli_row.addWidget(browse_stimuli)
        session_box = QGroupBox("Session")
        session_layout = QFormLayout(session_box)
        session_layout.addRow("stimuli", stimuli_row)
        session_layout.addRow("session folder", self.session_edit)
        session_layout.addRow("repeats", self.repeats)
        session_layout.addRow(self.hold_open)
        controls = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.abort_button, self.resume_button):
            controls.addWidget(button)
        session_layout.addRow(controls)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m presentations")
        self.status = QLabel("No session running.")
        self.status.setWordWrap(True)
        self.refresh = QLabel()
        """The presenter's measured refresh against the rig file's (red when durations would be wrong)."""
        self.refresh.setWordWrap(True)
        self.refresh.hide()
        self.refresh_question: QMessageBox | None = None
        """Open while the runner waits: go on at a measured refresh off the rig file's, or stop."""
        self.log = QPlainTextEdit(readOnly=True)  # type: ignore[call-overload]
        self.log.setMaximumBlockCount(2000)
        session_layout.addRow(self.progress)
        session_layout.addRow(self.refresh)
        session_layout.addRow(self.status)
        session_layout.addRow(self.log)

        self.log.setMinimumHeight(120)
        right_panel = QWidget()
        right = QVBoxLayout(right_panel)
        right.addWidget(session_box, 1)
        self.recent = RecentSessionsBox()
        self.recent.open_requested.connect(self.show_session)
        right.addWidget(self.recent)
        right.addWidget(plugins_box)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(right_panel)
        columns = QHBoxLayout(self)
        columns.addWidget(rig_box, 1)
        columns.addWidget(scroll, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(FEED_INTERVAL_MS)
        self.timer.timeout.connect(self._drain)
        rig = self.validate()
        if rig is not None:
            self.apply_rig(rig)
        self.session_edit.setText(str(new_session_folder()))
        self._update_buttons()

    # rig file --------------------------------------------------------------------------------
    def load_rig_file(self, path: str | Path) -> bool:
        """Show the rig file at ``path``; a missing or unreadable one is a message."""
        path = Path(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as error:
            self.message.emit(f"{path}: cannot read the rig file ({error}); choose another")
            return False
        self.rig_path = path
        self.rig_label.setText(str(path))
        self.rig_text.setPlainText(text)
        rig = self.validate()
        if rig is not None:
            self.apply_rig(rig)
        return True

    def _open_rig(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Rig file", "", "Rig files (*.toml);;All files (*)")
        if path:
            self.load_rig_file(path)

    def _save_rig(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the rig file", str(self.rig_path or "rig.toml"),
                                              "Rig files (*.toml)")
        if path:
            try:
                Path(path).write_text(self.rig_text.toPlainText())
            except OSError as error:
                self.message.emit(f"{path}: cannot write ({error.strerror}); choose another place")
                return
            self.rig_path = Path(path)
            self.rig_label.setText(path)

    def plugin_problems(self) -> list[str]:
        """What the source, gate and marker forms hold that their plugins refuse, one line each."""
        problems = []
        try:
            make_source(self.source.name, self.source.values())
        except CompactRigError as error:
            problems.append(f"source {self.source.name!r}: {error}")
        try:
            load_plugin(GATES, self.gate.name)(**self.gate.values())
        except CompactRigError as error:
            problems.append(f"gate {self.gate.name!r}: {error}")
        for name, (box, form) in self.markers.items():
            if box.isChecked():
                try:
                    parse_settings("marker output", name, getattr(load_plugin(MARKER_OUTPUTS, name), "options", ()),
                                   form.values())
                except CompactRigError as error:
                    problems.append(f"markers {name!r}: {error}")
        return problems

    def validate(self) -> RigConfig | None:
        """The edited rig, or None with every problem (rig text and forms) listed under the editor."""
        where = str(self.rig_path or "rig file")
        self._mark_line(None)
        try:
            rig = parse_rig(tomllib.loads(self.rig_text.toPlainText()), where)
            problems = self.plugin_problems()
        except tomllib.TOMLDecodeError as error:
            problems = [toml_problem(where, self.rig_text.toPlainText(), error)] + self.plugin_problems()
            self._mark_line(toml_error_line(error))
        except RigFileError as error:
            problems = error.problems + self.plugin_problems()
        if not problems:
            self.last_valid_source = (self.source.name, self.source.values())
            self.rig_problems.setStyleSheet("color: #1b5e20")
            overlap = (" Warning: the fixation dot covers part of the image; move [image] position_deg."
                       if rig.fixation_overlaps_image() else "")
            self.rig_problems.setText(f"Rig is valid: {rig.frames_on}+{rig.frames_off} frames at "
                                      f"{rig.refresh_hz:g} Hz; {rig.describe_drawn_image()}.{overlap}")
            self._show_placement(rig)
            return rig
        self.rig_problems.setStyleSheet("color: #b00020")
        self.rig_problems.setText("\n".join(problems))
        return None

    def _mark_line(self, line: int | None) -> None:
        """Highlight the rig text's line ``line`` (from 1) and put the cursor on it; None: no highlight."""
        selections = []
        document = self.rig_text.document()
        block = document.findBlockByNumber(line - 1) if line and document is not None else None
        if block is not None and block.isValid():
            selection = QTextEdit.ExtraSelection()
            selection.format.setBackground(QColor(255, 205, 210))
            selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            selection.cursor = QTextCursor(block)
            selections.append(selection)
            self.rig_text.setTextCursor(QTextCursor(block))
        self.rig_text.setExtraSelections(selections)

    def _validate_clicked(self) -> None:
        self.validate()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """The window may have moved since the last check: say again where the presenter will open (from the
        rig text alone: checking the plugin forms builds a source, too slow for every tab switch)."""
        super().showEvent(event)
        rig = self._parsed_rig()
        if rig is not None:
            self._show_placement(rig)

    def _parsed_rig(self) -> RigConfig | None:
        """The edited rig text as a rig, or None when it has problems (Validate lists them)."""
        try:
            return parse_rig(tomllib.loads(self.rig_text.toPlainText()))
        except (tomllib.TOMLDecodeError, RigFileError):
            return None

    def _show_placement(self, rig: RigConfig) -> None:
        """Say, before Start, when the presenter's window will hide part of this one (one shared screen)."""
        placement = presenter_placement(rig, self)
        shared = placement is not None and placement.covered > 0
        self.screen_notice.setVisible(shared)
        self.small_window_button.setVisible(shared)
        if placement is not None and shared:
            self.screen_notice.setText(placement.describe(rig))

    def _use_small_window(self) -> None:
        rig = self._parsed_rig()
        placement = None if rig is None else presenter_placement(rig, self)
        if rig is None or placement is None:
            return
        corner = placement.far_corner(rig, top_window(self).frameGeometry())
        self.rig_text.setPlainText(with_small_window(self.rig_text.toPlainText(), rig, corner))
        self.validate()

    def apply_rig(self, rig: RigConfig) -> None:
        """Fill the plugin forms from the rig's [source], [gate] and [markers]."""
        self.source.choose(rig.source_name, rig.source_options)
        self.gate.choose(rig.gate_name, rig.gate_options)
        for name, (box, form) in self.markers.items():
            box.setChecked(name in rig.marker_outputs)
            form.set_values(rig.marker_options.get(name, {}))

    def configured_rig(self) -> RigConfig | None:
        """The edited rig with the source, gate and markers chosen in the forms."""
        rig = self.validate()
        if rig is None:
            return None
        outputs = tuple(name for name, (box, _) in self.markers.items() if box.isChecked()) or ("none",)
        return replace(rig, source_name=self.source.name, source_options=self.source.values(),
                       gate_name=self.gate.name, gate_options=self.gate.values(), marker_outputs=outputs,
                       marker_options={name: form.values() for name, (box, form) in self.markers.items()
                                       if box.isChecked() and form.values()})

    def calibrate(self) -> bool:
        """Run the eye tracker's calibration (``iohub_gate.calibrate``) off the GUI thread; pressed again while
        it runs, cancel it."""
        if self.calibration is not None:
            self.calibration.cancel()
            return False
        rig = self.configured_rig()
        if rig is None or self.running() or self.calibrations.stopped:
            self.message.emit("Not during a session" if self.running() else
                              "The rig has problems (listed under the rig file); fix them to calibrate")
            return False
        job = self.calibrations.add(Job(lambda progress, cancelled: calibrate(rig, cancelled)))
        job.label = "the eye tracker's calibration"
        job.finished.connect(lambda line: self._calibration_ended(line or "calibration cancelled"))
        job.failed.connect(self._calibration_ended)
        self.calibration = job.start(self)
        self.calibrate_button.setText("Cancel calibration")
        for button in (self.start_button, self.resume_button):  # the tracker takes one connection at a time
            button.setEnabled(False)
        self.log.appendPlainText("calibrating on the rig screen: space starts it, Escape aborts")
        return True

    def _calibration_ended(self, line: str) -> None:
        self.calibration = None
        self.calibrate_button.setText("Calibrate eye tracker")
        self._update_buttons()
        self.log.appendPlainText(line)
        self.message.emit(line)

    # session ---------------------------------------------------------------------------------
    def _choose_stimuli(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Stimulus-set folder")
        if folder:
            self.stimuli_edit.setText(folder)

    def set_stimuli(self, folder: Path | None) -> None:
        """The Stimulus set view's saved folder (used unless the user typed another)."""
        if folder is not None:
            self.stimuli_edit.setText(str(folder))

    @property
    def session_folder(self) -> Path | None:
        """The session running, or the last one run or shown."""
        return self.session.folder

    def running(self) -> bool:
        """A session is being run (from the start request until the view has taken its end)."""
        return self.session.running

    def start(self) -> bool:
        """Check the rig, then create the session and run it off the GUI thread."""
        if self.running():
            return False
        rig = self.configured_rig()
        if rig is None:
            self.message.emit("The rig has problems (listed under the rig file); fix them to start")
            return False
        try:
            unit_map = parse_unit_map(self.unit_map.text())
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        stimuli = self.stimuli_edit.text().strip()
        if not stimuli:
            self.message.emit("Choose a stimulus set (save the Stimulus set view's set, or pick a folder)")
            return False
        folder = Path(self.session_edit.text().strip() or new_session_folder())
        plan = SessionPlan(stimuli=stimuli, unit_map=unit_map, repeats=self.repeats.value())
        return self._started(folder, lambda: self.session.start(folder, plan, rig, self.rig_path,
                                                                self.hold_open.isChecked(), ask_refresh=True))

    def resume(self, folder: str | Path) -> bool:
        """Continue a stopped or crashed session (its plan and rig are its own)."""
        if self.running():
            return False
        return self._started(Path(folder), lambda: self.session.resume(Path(folder), self.hold_open.isChecked(),
                                                                       ask_refresh=True))

    def _resume_chosen(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Session folder to resume", str(sessions_root()))
        if folder:
            self.resume(folder)

    def _started(self, folder: Path, start: Callable[[], None]) -> bool:
        try:
            start()
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self.recent.add(folder)
        self.log.clear()
        self.progress.reset()  # no count until this session's first status (never the last session's)
        self.refresh.setText("Refresh: measured when the presenter's window opens")
        self.refresh.setStyleSheet("")
        self.refresh.show()
        self.timer.start()
        self.status.setText(f"Starting the session in {folder}…")
        self._update_buttons()
        return True

    def queue_images(self, images: StimulusSet, repeats: int) -> bool:
        """Into the running session's plan, or the last session's (shown when it is resumed)."""
        try:
            self.message.emit(self.session.queue_images(images, repeats))
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        return True

    def _hold_open_changed(self, checked: bool) -> None:
        self.session.set_hold_open(checked)

    def toggle_pause(self) -> None:
        self.session.set_paused(not self.session.paused)
        self.pause_button.setText("Resume" if self.session.paused else "Pause")

    def abort(self) -> None:
        """Stop now: the trial on screen is cut short and its images go back into the plan."""
        self.session.abort()

    def stop_and_wait(self) -> None:
        """Abort and wait until the presenter is shut down and the store closed (window closing): the runner
        waits at most half a second for due responses and for the presenter, which is killed if it hangs."""
        self.closed = True
        self.calibrations.stop()
        self.session.close()
        self._drain()

    def _drain(self) -> None:
        """Draw what the session told since the last tick, and hand it on to the live fits."""
        events = self.session.take_events()
        lines = [event for event in events if isinstance(event, SessionMessage)]
        if lines:
            self.log.appendPlainText("\n".join(line.text for line in lines))
            trouble = [line.text for line in lines if line.trouble]
            if trouble:
                self.message.emit(trouble[-1])
        statuses = [event for event in events if isinstance(event, SessionStatus)]
        if statuses:
            self._show_status(statuses[-1])
        told = (SessionMessage, SessionStatus, SessionEnded, StoredSessionShown, RefreshMeasured)
        others = [event for event in events if not isinstance(event, told)] + statuses[-1:]
        if others:
            self.events_arrived.emit(others)
        for event in events:
            if isinstance(event, RefreshMeasured):
                self._show_refresh(event.check)
                if event.question:
                    self._ask_refresh(event.check)
            elif isinstance(event, SessionEnded):
                self._ended(event)
            elif isinstance(event, StoredSessionShown):
                self.status.setText(f"Last session: {event.folder} ({event.responses} responses stored); "
                                    "Resume continues it.")
        if not self.session.busy():
            self.timer.stop()
        self._update_buttons()

    def _show_refresh(self, check: RefreshCheck) -> None:
        line = check.line()
        self.refresh.setText(line[0].upper() + line[1:])
        self.refresh.setStyleSheet(TROUBLE_STYLE if check.differs else "")
        self.refresh.show()

    def _ask_refresh(self, check: RefreshCheck) -> None:
        """Ask (without blocking the event loop: the session's events keep coming) whether to show the images at
        a refresh the rig file does not mean; Stop is the default, so Enter never runs a session with wrong
        durations."""
        box = QMessageBox(QMessageBox.Icon.Warning, "The refresh rate differs",
                          f"The {check.line()}.\n\nShow the images at this refresh anyway?", parent=self)
        go_on = box.addButton(SHOW_ANYWAY, QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stop)
        box.setEscapeButton(stop)
        box.buttonClicked.connect(lambda button: self._refresh_answered(button is go_on))
        self.refresh_question = box
        box.open()

    def _refresh_answered(self, go_on: bool) -> None:
        self.refresh_question = None
        self.session.answer_refresh(go_on)

    def _ended(self, ended: SessionEnded) -> None:
        if self.refresh_question is not None:  # stopped (Abort, an error) while asked: nothing left to answer
            box, self.refresh_question = self.refresh_question, None
            box.done(0)
        if ended.problem is not None:
            self.log.appendPlainText(f"error: {ended.problem}")
            self.status.setText(f"The session stopped: {ended.problem}")
            self.message.emit(ended.problem)
        else:
            last = self.session.status  # the presenter is shut down now
            shown = self._status_text(last, ended=True) if last is not None else self.status.text()
            self.status.setText(shown + ("\nThe session's plan is complete." if ended.complete else
                                         f"\nStopped; resume it from {ended.folder}."))
        if (Path(ended.folder) / SESSION_FILE).is_file():  # that folder is a session now: the next Start makes another
            self.session_edit.setText(str(new_session_folder()))
        self.session_finished.emit(ended.complete)

    def _show_status(self, status: SessionStatus) -> None:
        self.progress.setMaximum(max(status.planned, 1))
        self.progress.setValue(status.done)
        self.status.setText(self._status_text(status))

    @staticmethod
    def _status_text(status: SessionStatus, ended: bool = False) -> str:
        presenter = "closed" if ended else "running" if status.presenter_alive else "not running"
        return (f"Presenter: {presenter}, "
                f"{status.dropped_frames} dropped frame(s). Source: "
                f"{'connected' if status.source_connected else 'not connected (retrying)'}. "
                f"{'Paused. ' if status.paused else ''}{status.done}/{status.planned} presentations complete.")

    def _update_buttons(self) -> None:
        running = self.running()
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.abort_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    # settings --------------------------------------------------------------------------------
    def _saved_rig_text(self) -> str:
        """What the rig editor would show without edits: the rig file's text, or the default rig."""
        try:
            return self.rig_path.read_text() if self.rig_path else DEFAULT_RIG_TEXT
        except (OSError, UnicodeDecodeError):
            return ""

    def settings(self) -> dict[str, Any]:
        """What the next start restores: unsaved rig edits are kept (never lost at close), and the
        source options only as they last validated (a typo is not carried into the next run)."""
        text = self.rig_text.toPlainText()
        source, options = (self.source.name, self.source.values()) if not self.plugin_problems() else \
            self.last_valid_source
        return {"rig_file": str(self.rig_path) if self.rig_path else None, "source": source,
                "rig_text": text if text != self._saved_rig_text() else None,
                "source_options": options, "unit_map": self.unit_map.text(),
                "stimuli": self.stimuli_edit.text(), "repeats": self.repeats.value(),
                "hold_open": self.hold_open.isChecked(),
                "last_session": str(self.session_folder) if self.session_folder else None,
                "recent_sessions": self.recent.remembered}

    def show_session(self, folder: str | Path) -> bool:
        """Show a stored session (not running) in the Live fits view: read off the GUI thread, then handed on
        as a running session's start would be. Resume and queueing then go to it."""
        if self.closed:
            return False
        try:
            self.session.open_stored(Path(folder))
        except CompactRigError as error:
            self.message.emit(str(error))
            return False
        self.recent.add(folder)
        self.timer.start()
        return True

    def adopt_window(self, unit: str | None, window: tuple[float, float] | None) -> str:
        """Count ``unit`` (None: every unit) in ``window`` (None: the source's) from the spikes kept
        (``SessionController.adopt_window``): the recounts come through the timer; returns its line."""
        line = self.session.adopt_window(unit, window)
        self.timer.start()  # a stopped session is read again, a running one restarts its watchers
        return line

    def restore(self, settings: dict[str, Any]) -> None:
        remembered = settings.get("recent_sessions")
        self.recent.set_remembered(remembered if isinstance(remembered, list) else [])
        if settings.get("last_session"):
            self.show_session(settings["last_session"])
        if settings.get("rig_file"):
            self.load_rig_file(settings["rig_file"])
        if settings.get("rig_text"):
            self.rig_text.setPlainText(settings["rig_text"])
            self.rig_label.setText(f"{self.rig_path or 'default rig'} (unsaved changes, kept from last time)")
        if settings.get("source"):
            self.source.choose(settings["source"], settings.get("source_options") or {})
            self.last_valid_source = (settings["source"], settings.get("source_options") or {})
        self.unit_map.setText(settings.get("unit_map") or "")
        self.stimuli_edit.setText(settings.get("stimuli") or "")
        self.repeats.setValue(int(settings.get("repeats") or 2))
        self.hold_open.setChecked(bool(settings.get("hold_open", False)))
