"""The tests' own shape: helpers live in tests/helpers, and a conftest.py holds only fixtures
and hooks, so no module imports from one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])


def imported_modules(source: str, package: str) -> set[str]:
    """What `source` (a module of `package`) imports from: each module, and each name imported
    from one as module.name; lazy imports inside functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def conftest_imports(source: str, package: str) -> set[str]:
    """The conftest modules that `source` (a module of `package`) imports from."""
    found: set[str] = set()
    for name in imported_modules(source, package):
        parts = name.split(".")
        if "conftest" in parts:
            found.add(".".join(parts[: parts.index("conftest") + 1]))
    return found


def package_of(path: Path) -> str:
    """tests/limiter/test_guard.py → tests.limiter."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def test_the_reader_sees_every_way_of_importing_from_a_conftest() -> None:
    source = (
        "from tests.conftest import a\n"
        "def f():\n"
        "    from .conftest import b\n"
        "    from . import conftest\n"
        "import tests.browser.conftest\n"
        "from tests.helpers.waiting import eventually\n"
    )
    assert conftest_imports(source, "tests.limiter") == {
        "tests.conftest",
        "tests.limiter.conftest",
        "tests.browser.conftest",
    }


def test_no_module_imports_from_a_conftest() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in SOURCES
        if (found := conftest_imports(path.read_text(encoding="utf-8"), package_of(path)))
    }
    assert offenders == {}, "move what they import to tests/helpers/"
