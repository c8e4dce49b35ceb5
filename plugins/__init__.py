"""Plugins: response sources, marker outputs and gates, registered by entry point.

A lab's plugin subclasses one of the base classes importable from here and registers it under the
entry-point group ``compactrig.response_sources``, ``compactrig.gates`` or ``compactrig.marker_outputs``::

    from compactrig.plugins import Option, Response, ResponseSource
"""

from compactrig.plugins.gates import Gate
from compactrig.plugins.markers import MarkerOutput
from compactrig.plugins.sources.base import Option, Presentation, Response, ResponseSource

__all__ = ["Gate", "MarkerOutput", "Option", "Presentation", "Response", "ResponseSource"]
