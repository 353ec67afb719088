"""The package's shape: no import cycle inside ``uimdata/`` or ``pipelines/`` (module-level and
function-level imports alike), and no module reaching into another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported module, names imported from it) for every import in the file that resolves to a module
    of ``known``; ``from pkg import mod`` counts as importing ``pkg.mod``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                if f"{mod}.{a.name}" in known:
                    out.append((f"{mod}.{a.name}", []))
                elif mod in known:
                    out.append((mod, [a.name]))
    return out


def _graph(package: str) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    known = _modules(package)
    graph: dict[str, set[str]] = {m: set() for m in known}
    private = []
    for name, path in known.items():
        for mod, names in _imports(name, path, known):
            if mod == name:
                continue
            # a package's __init__ importing its own submodules (re-exports) is not a dependency cycle
            if not (name and mod.startswith(name + ".") and path.name == "__init__.py"):
                graph[name].add(mod)
            for n in names:
                if n.startswith("_") and not n.startswith("__") and not mod.startswith(name.rsplit(".", 1)[0] + "._"):
                    private.append((name, mod, n))
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    for package in ("uimdata", "pipelines"):
        graph, _ = _graph(package)
        assert _cycles(graph) == [], package


def test_no_private_names_across_modules():
    for package in ("uimdata", "pipelines"):
        _, private = _graph(package)
        assert private == [], private


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
