"""The import graph of the product code, function-local imports included: no cycles, and no
module importing from a layer above its own (mapping < state < connectors < sync < hub.py).

``lint-imports`` (CI) checks the packages; this also covers ``hub.py`` and imports hidden inside
functions, which is how the cycle through ``hub.py`` once hid.
"""

from __future__ import annotations

from bench import import_graph


def test_the_product_code_has_no_import_cycle() -> None:
    assert import_graph.cycles(import_graph.graph()) == []


def test_no_module_imports_from_a_higher_layer() -> None:
    assert import_graph.upward_imports(import_graph.graph()) == []


def test_a_module_reached_through_an_upward_import_would_be_found() -> None:
    # The check itself: a mapping module naming the engine is reported.
    graph = {"mapping.model": {"sync.engine"}, "sync.engine": set()}
    assert import_graph.upward_imports(graph) == [("mapping.model", "sync.engine")]
    assert import_graph.cycles({"a.x": {"a.y"}, "a.y": {"a.x"}}) == [["a.x", "a.y"]]
