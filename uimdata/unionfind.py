"""Disjoint sets (union-find): the groups that pairs of linked items form, e.g. duplicate clusters.

:class:`UnionFind` works on the positions ``0 .. n-1`` and keeps each group's smallest member as its
root; :func:`pair_groups` does the same for any hashable items, named by the item seen first.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

import numpy as np

H = TypeVar("H", bound=Hashable)


class UnionFind:
    """Groups of the positions ``0 .. n-1``; a group's root is its smallest member."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving
            a = parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        """The root of every position."""
        return np.array([self.find(j) for j in range(len(self.parent))], np.int64)


def pair_groups(pairs: Iterable[tuple[H, H]]) -> dict[H, H]:
    """Every item named in ``pairs`` -> its group's representative (the group's item seen first)."""
    pos: dict[H, int] = {}
    items: list[H] = []
    links = []
    for a, b in pairs:
        for x in (a, b):
            if x not in pos:
                pos[x] = len(items)
                items.append(x)
        links.append((pos[a], pos[b]))
    uf = UnionFind(len(items))
    for i, j in links:
        uf.union(i, j)
    return {x: items[uf.find(i)] for i, x in enumerate(items)}
