"""The package's shape: imports run one way, layers import only what is below them.

Every import counts, lazy ones inside functions and `TYPE_CHECKING` ones included.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
import sec1000
from sec1000.commands import COMMANDS, parse_request
from sec1000.common.errors import AddonError

PACKAGE = Path(sec1000.__file__).parent

ARCHITECTURE = Path(__file__).resolve().parent.parent / "ARCHITECTURE.md"


def table_rows(title: str) -> list[list[str]]:
    """The rows of the Markdown table that follows `title` in ARCHITECTURE.md."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    after = text[text.index(title) :].splitlines()
    start = next(n for n, line in enumerate(after) if line.startswith("|"))
    rows = []
    for line in after[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def names(cell: str) -> list[str]:
    """`device/`, `options.py` → device, options."""
    return [name.removesuffix("/").removesuffix(".py") for name in re.findall(r"`([^`]+)`", cell)]


# The layer of each part of the core, as ARCHITECTURE.md's table says.
LAYERS = {
    part: int(row[0]) for row in table_rows("| layer | parts | what |") for part in names(row[1])
}
# Inside a folder: each module's rank (a module imports only lower ranks), as the second table.
INSIDE = {
    (names(row[0])[0], module): rank
    for row in table_rows("| folder | order |")
    for rank, group in enumerate(row[1].split("→"))
    for module in names(group)
}
ADAPTERS = ("web", "ha", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The package's modules that `name` imports, anywhere in its source."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def part(name: str) -> str:
    """sec1000.web.live → web; sec1000.device.link → link."""
    pieces = name.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def find_cycle() -> list[str] | None:
    """One import cycle, as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(GRAPH[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_graph_sees_lazy_and_type_checking_imports() -> None:
    # serve imports the demo's panel module inside a function: the graph must see it.
    assert "sec1000.simulator.panel" in GRAPH["sec1000.serve"]
    assert "sec1000.runtime" in GRAPH["sec1000.web.keys"]


def test_no_import_cycle_anywhere() -> None:
    assert find_cycle() is None, " → ".join(find_cycle() or [])


def test_the_tables_name_every_core_part_and_folder() -> None:
    core = {part(n) for n in MODULES} - {*ADAPTERS, "serve", "simulator", "__main__", ""}
    assert core == set(LAYERS), "ARCHITECTURE.md's layer table and the package differ"
    for folder, module in INSIDE:
        assert f"sec1000.{folder}.{module}" in MODULES, (folder, module)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if part(n) in LAYERS))
def test_core_modules_import_only_lower_layers_never_a_peer(name: str) -> None:
    own = LAYERS[part(name)]
    for target in GRAPH[name]:
        assert part(target) in LAYERS, f"{name} imports the adapter or tool {target}"
        if part(target) == part(name):
            continue  # inside a folder: the next test
        assert LAYERS[part(target)] < own, f"{name} (layer {own}) imports {target}"


def module_of(name: str) -> str:
    """sec1000.limiter.guard → guard."""
    return name.split(".")[2] if name.count(".") >= 2 else ""


@pytest.mark.parametrize("name", sorted(n for n in MODULES if (part(n), module_of(n)) in INSIDE))
def test_inside_a_folder_modules_import_only_those_named_before_them(name: str) -> None:
    rank = INSIDE[(part(name), module_of(name))]
    for target in GRAPH[name]:
        key = (part(target), module_of(target))
        if part(target) == part(name) and key in INSIDE:
            assert INSIDE[key] < rank, f"{name} imports {target}, named with or after it"


def test_protocol_imports_nothing_else_of_the_package_but_the_error_root() -> None:
    for name in MODULES:
        if part(name) == "protocol":
            others = {t for t in GRAPH[name] if part(t) != "protocol"}
            assert others <= {"sec1000.common.errors"}, name


def test_every_error_the_package_defines_has_the_one_root() -> None:
    errors = []
    for name in sorted(MODULES):
        if name == "sec1000.__main__":
            continue
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                errors.append(value)
    assert len(errors) > 10  # the device's, the options', Home Assistant's, …
    assert [e for e in errors if not issubclass(e, AddonError)] == []


def test_protocol_speaks_no_home_assistant() -> None:
    words = re.compile(r"mdi:|device_class|state_class|home assistant|\bicon\b", re.I)
    for name, path in MODULES.items():
        if part(name) == "protocol":
            assert not words.search(path.read_text(encoding="utf-8")), name


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters_do_not_import_one_another(adapter: str) -> None:
    # `cli` starts `serve` (the add-on process, which wires the adapters); nothing else may.
    others = {a for a in ADAPTERS if a != adapter} | ({"serve"} if adapter != "cli" else set())
    for name in MODULES:
        if part(name) == adapter:
            assert not {part(t) for t in GRAPH[name]} & others, (name, GRAPH[name])


def test_serve_does_not_import_the_cli_and_the_panel_not_the_simulator() -> None:
    assert "cli" not in {part(t) for t in GRAPH["sec1000.serve"]}
    for name in MODULES:
        if part(name) == "web":
            assert "simulator" not in {part(t) for t in GRAPH[name]}, name


def test_the_simulator_needs_only_the_protocol_and_its_panel_hook() -> None:
    for name in MODULES:
        if part(name) == "simulator" and name != "sec1000.simulator.panel":
            assert {part(t) for t in GRAPH[name]} <= {"protocol", "simulator"}, name


def test_every_registry_entry_parses_into_its_own_request() -> None:
    samples = {"limit": 2.5, "mode": "value", "three_phase_sum": True}
    for spec in COMMANDS:
        request = parse_request(spec, {p.name: samples[p.name] for p in spec.params})
        assert request.name is spec.name, spec.name


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def test_every_module_fits_in_one_head() -> None:
    long = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these along a real seam: {long}"


def test_every_function_fits_on_one_screen() -> None:
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} ({lines} lines)")
    assert long == [], long
