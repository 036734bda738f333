"""The link graph between tables: load order and the links that break cycles."""

from __future__ import annotations


def topological_order(parents: dict[str, list[str]]) -> list[str]:
    """Tables in an order where every parent comes before its children.

    Ties are broken by name so the order is the same on every run.
    """
    remaining = {node: set(ps) & parents.keys() for node, ps in parents.items()}
    order: list[str] = []
    while remaining:
        ready = sorted(node for node, ps in remaining.items() if not ps)
        if not ready:
            raise ValueError("cycle: " + " -> ".join(find_cycle(parents) or []))
        for node in ready:
            order.append(node)
            del remaining[node]
        for ps in remaining.values():
            ps.difference_update(ready)
    return order


def find_cycle(parents: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None. Self-edges do not count."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for parent in sorted(parents.get(node, [])):
            if parent == node or parent not in parents:
                continue
            if state.get(parent) == 1:
                return path[path.index(parent):] + [parent]
            if parent not in state:
                found = visit(parent)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(parents):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def links_to_defer(links: list[tuple[str, str, str, bool]]) -> set[tuple[str, str]]:
    """Choose links to defer until the graph has no cycle.

    `links` are (table, column, parent_table, nullable). Repeatedly finds a cycle and
    defers one of its links, preferring a nullable one, then the alphabetically first,
    so the choice is the same on every run. Returns {(table, column)}.
    """
    deferred: set[tuple[str, str]] = set()
    while True:
        parents: dict[str, list[str]] = {}
        for table, column, parent, _ in links:
            parents.setdefault(table, [])
            parents.setdefault(parent, [])
            if (table, column) not in deferred and parent != table:
                parents[table].append(parent)
        cycle = find_cycle(parents)
        if not cycle:
            return deferred
        edges = set(zip(cycle, cycle[1:]))
        candidates = [(not nullable, table, column) for table, column, parent, nullable in links
                      if (table, parent) in edges and (table, column) not in deferred]
        _, table, column = min(candidates)
        deferred.add((table, column))
