"""What our source files import, read from their syntax trees: the helper of the architecture tests
(Qt and PsychoPy boundaries, POSIX-only modules, the compactrig namespace)."""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO


def python_files(*folders: str) -> list[Path]:
    """Every ``.py`` file under the given repository folders ("" is the package root's ``__init__.py``)."""
    return [p for folder in folders
            for p in ([REPO / "__init__.py"] if folder == "" else sorted((REPO / folder).rglob("*.py")))]


def absolute_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def offenders(files: list[Path], forbidden: tuple[str, ...] | set[str]) -> list[str]:
    """``file:line imports module`` for every import whose top-level name is forbidden."""
    return [f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path.name}:{line} imports {name}"
            for path in files for line, name in absolute_imports(path) if name.split(".")[0] in forbidden]
