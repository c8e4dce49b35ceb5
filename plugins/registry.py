"""Plugins by entry point: the built-ins register exactly like a lab's own packages do."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from compactrig.engine.errors import CompactRigError

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


def make_source(name: str, options: dict[str, Any]) -> Any:
    """A configured response source: the plugin ``name`` built with ``options``."""
    source_class = load_plugin(RESPONSE_SOURCES, name)
    try:
        return source_class(**options)
    except CompactRigError:
        raise
    except Exception as error:  # noqa: BLE001 - a lab's plugin may fail any way
        raise CompactRigError(f"source {name!r} could not be set up ({type(error).__name__}: {error})") from None
