"""Import-graph figures for the product code: cycles, upward imports, largest modules.

Run by hand: ``python -m bench.import_graph``. Every ``import`` statement counts, including those
inside functions (a function-local import is how a cycle hides). Layers, lowest first:
mapping < state < connectors < sync < hub.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mapping", "state", "connectors", "sync")
LAYERS = {"mapping": 0, "state": 1, "connectors": 2, "sync": 3, "hub": 4}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_files() -> list[Path]:
    files = [ROOT / "hub.py"] if (ROOT / "hub.py").exists() else []
    for package in PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def graph() -> dict[str, set[str]]:
    """Each product module and the product modules it imports."""
    files = product_files()
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def upward_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((src, dst) for src, dsts in edges.items() for dst in dsts
                  if LAYERS[dst.split(".")[0]] > LAYERS[src.split(".")[0]])


def main() -> None:
    files = product_files()
    edges = graph()
    modules = set(edges)
    upward = upward_imports(edges)
    found = cycles(edges)
    sizes = sorted(((len(p.read_text().splitlines()), module_name(p)) for p in files), reverse=True)
    print(f"modules: {len(modules)}  import edges: {sum(len(d) for d in edges.values())}")
    print(f"cycles (strongly connected groups): {len(found)}")
    for group in found:
        print("  " + " <-> ".join(group))
    print(f"upward imports (lower layer -> higher layer): {len(upward)}")
    for src, dst in upward:
        print(f"  {src} -> {dst}")
    print(f"modules over 500 lines: {sum(1 for n, _ in sizes if n > 500)}")
    for n, name in sizes[:8]:
        print(f"  {n:5d}  {name}")


if __name__ == "__main__":
    main()
