"""The package layout reads as the pipeline, and imports run one way.

    core  <-  stages, audio  <-  conversation  <-  measure  <-  app

`core` imports nothing else in the package; `stages` (the models and pure
cores) and `audio` (the edges) know only `core`; `conversation` (a session's
routes) puts stages together; `measure` holds the yardsticks (the naive
baseline, WER, the loopback LLM server); only the commands in `app` may
import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "voice_agent"
ALLOWED = {
    "core": {"core"},
    "stages": {"core", "stages"},
    "audio": {"core", "audio"},
    "conversation": {"core", "stages", "conversation"},
    "app": {"core", "stages", "audio", "conversation", "app", "measure"},
    "measure": {"core", "stages", "audio", "conversation", "measure"},
}
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _imported_subpackages(path: Path) -> set[str]:
    """The top-level subpackages of voice_agent that `path` imports."""
    tree = ast.parse(path.read_text())
    own = path.relative_to(PACKAGE).parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's own package
                base = list(own[:-1])[: len(own) - node.level]
                target = [*base, *(node.module or "").split(".")] if node.module else base
            elif node.module and node.module.startswith("voice_agent."):
                target = node.module.split(".")[1:]
            else:
                continue
            if target and target[0] in ALLOWED:
                found.add(target[0])
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0]
    if layer not in ALLOWED:
        return  # the package's own __init__, __main__ and testing helpers sit on top
    wrong = _imported_subpackages(path) - ALLOWED[layer]
    assert not wrong, f"{path.name} in {layer}/ imports {sorted(wrong)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines (keep modules under {MAX_LINES})"


def test_every_module_sits_in_a_subpackage() -> None:
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top <= {"__init__.py", "__main__.py", "testing.py"}, f"loose modules: {sorted(top)}"
