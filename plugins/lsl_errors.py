"""pylsl's exceptions, wherever this pylsl keeps them (``pylsl.util`` since 1.17, the package before)."""

from __future__ import annotations

try:
    from pylsl.util import LostError, TimeoutError as LslTimeoutError
except ImportError:  # pragma: no cover - older pylsl
    from pylsl import LostError, TimeoutError as LslTimeoutError  # type: ignore[attr-defined, no-redef]

__all__ = ["LostError", "LslTimeoutError"]
