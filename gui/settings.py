"""What the window remembers between runs (last bank, rig file, source, layout), as JSON.

Stored in the user's config directory (platformdirs), or in ``COMPACTRIG_CONFIG_DIR``
when set (tests, portable installs). A damaged file is set aside, never fatal: the
app starts with defaults and says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import platformdirs

FILE_NAME = "settings.json"


def settings_path() -> Path:
    folder = os.environ.get("COMPACTRIG_CONFIG_DIR") or platformdirs.user_config_dir("compactrig")
    return Path(folder) / FILE_NAME


def load_settings() -> tuple[dict[str, Any], str | None]:
    """(settings, problem): an unreadable file gives empty settings and a one-line problem."""
    path = settings_path()
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data, None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        path.replace(path.with_suffix(".damaged.json"))
        return {}, (f"{path}: unreadable settings ({error}); started with defaults, the old file is kept as "
                    "*.damaged.json")


def save_settings(settings: dict[str, Any]) -> None:
    """Write atomically (a crash mid-write leaves the previous settings)."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(settings, indent=2))
    partial.replace(path)
