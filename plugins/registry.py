"""Plugins by entry point: the built-ins register exactly like a lab's own packages do.

This is the one home of building plugins from their names and options: ``make_source``,
``make_gate`` and ``make_marker_output`` construct (and so check) a plugin without connecting it;
``check_rig_plugins`` is what ``rig check`` and ``session run`` ask before a session.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from compactrig.engine.errors import CompactRigError
from compactrig.plugins.sources.base import parse_settings

if TYPE_CHECKING:
    from compactrig.plugins.event_codes import CodeTable
    from compactrig.rig.presenter.rig import RigConfig

MARKER_OUTPUTS = "compactrig.marker_outputs"
RESPONSE_SOURCES = "compactrig.response_sources"
GATES = "compactrig.gates"


def available(group: str) -> dict[str, Any]:
    """Installed plugins of ``group``: name -> entry point (not yet imported)."""
    return {point.name: point for point in entry_points(group=group)}


def load_plugin(group: str, name: str) -> Any:
    """The class registered as ``name`` in ``group``; a clear error if absent or broken."""
    points = available(group)
    if name not in points:
        known = ", ".join(sorted(points)) or "none"
        raise CompactRigError(f"{group} plugin {name!r} is not installed (installed: {known}); "
                              "check the name or pip-install the package that provides it")
    try:
        return points[name].load()
    except Exception as error:  # noqa: BLE001 - a broken third-party plugin must not crash the app
        raise CompactRigError(f"{group} plugin {name!r} failed to load ({type(error).__name__}: {error})") from None


def _build(kind: str, name: str, build: Any, options: dict[str, Any]) -> Any:
    try:
        return build(**options)
    except CompactRigError:
        raise
    except Exception as error:  # noqa: BLE001 - a lab's plugin may fail any way
        raise CompactRigError(f"{kind} {name!r} could not be set up ({type(error).__name__}: {error})") from None


def make_source(name: str, options: dict[str, Any]) -> Any:
    """A configured response source: the plugin ``name`` built with ``options`` (not connected)."""
    return _build("source", name, load_plugin(RESPONSE_SOURCES, name), options)


def make_gate(name: str, options: dict[str, Any]) -> Any:
    """A configured gate: the plugin ``name`` built with ``options`` (not connected)."""
    return _build("gate", name, load_plugin(GATES, name), options)


def make_marker_output(name: str, options: dict[str, Any]) -> Any:
    """A configured marker output (not opened): described options are typed and checked, defaults filled in."""
    output_class = load_plugin(MARKER_OUTPUTS, name)
    if getattr(output_class, "options", ()):
        options = parse_settings("marker output", name, output_class.options, options)
    try:
        return output_class(**options)
    except CompactRigError:
        raise
    except Exception as error:  # noqa: BLE001 - a lab's plugin may fail any way
        raise CompactRigError(f"marker output {name!r} could not be set up ({type(error).__name__}: {error}); "
                              f"check [markers.{name}] in the rig file") from None


def check_rig_plugins(rig: RigConfig) -> Any:
    """The rig's response source, built, after the rig's gate and marker outputs were built with their options
    as a session builds them; none is connected. Every problem found, one line each, is raised as one error:
    what ``rig check`` and ``start_session`` ask."""
    checks = [(f"source {rig.source_name!r}", make_source, rig.source_name, rig.source_options),
              (f"gate {rig.gate_name!r}", make_gate, rig.gate_name, rig.gate_options)]
    def marker_output(name: str, options: dict[str, Any]) -> Any:
        output = make_marker_output(name, options)
        output.use_codes(rig.event_codes, {})  # a device narrower than the code table is refused here
        return output

    checks += [(f"marker output {name!r}", marker_output, name, rig.marker_options.get(name, {}))
               for name in rig.marker_outputs if name != "none"]
    problems, built = [], []
    for what, build, name, options in checks:
        try:
            built.append(build(name, options))
        except CompactRigError as error:
            text = str(error)  # each line names its plugin once
            problems.append(text if text.startswith(what) else f"{what}: {text}")
    if not problems:
        problems += _code_matching_problems(built[0], built[2:], rig)
    if problems:
        raise CompactRigError("\n".join(problems))
    return built[0]


def _code_matching_problems(source: Any, outputs: list[Any], rig: RigConfig) -> list[str]:
    """A source set to match onsets to their event-code words needs the table, and an output sending it."""
    try:
        tell_codes(source, rig.event_codes)
    except CompactRigError as error:
        return [str(error)]
    if getattr(source, "matches_codes", False) and not any(getattr(o, "sends_codes", False) for o in outputs):
        return [f"source {rig.source_name!r} matches onsets to their event-code words, but no marker output sends "
                "codes: add serial, parallel, nidaq or labjack to [markers] outputs"]
    return []


def tell_codes(source: Any, codes: CodeTable) -> None:
    """``source.use_codes(codes)`` where the source has it, a refusal or a lab plugin's failure made one line."""
    use = getattr(source, "use_codes", None)
    try:
        if use is not None:
            use(codes)
    except CompactRigError as error:
        raise CompactRigError(f"source {source.name!r}: {error}") from None
    except Exception as error:  # noqa: BLE001 - a lab's plugin may fail any way
        raise CompactRigError(f"source {source.name!r} refused the code table ({type(error).__name__}: "
                              f"{error})") from None


def resume_source(source: Any, stored: Mapping[str, int]) -> None:
    """``source.resume_from(stored)``, a lab plugin's failure there made one line."""
    try:
        source.resume_from(stored)
    except CompactRigError:
        raise
    except Exception as error:  # noqa: BLE001 - a lab's plugin may fail any way
        raise CompactRigError(f"source {source.name!r} could not resume ({type(error).__name__}: {error})") from None
