"""Region graphs for structured-decomposable tensorised circuits.

A region graph here is a *tree* of scopes: every internal region has exactly
one partition into disjoint child scopes. A circuit built on a tree is
structured-decomposable (every product splits a scope the same way), which is
what squaring a circuit needs (Loconte et al., ICLR 2024, Sec. 4; Vergari et
al., NeurIPS 2021). Leaves hold a single variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RegionGraph", "random_binary_tree", "linear_tree", "quad_tree", "make_region_graph"]


@dataclass
class RegionGraph:
    """A tree of regions over ``n_variables`` variables.

    Attributes
    ----------
    n_variables : int
    scopes : list of tuple of int
        Scope of each region; region 0 is not special, see ``root``.
    children : list of tuple of int
        Child regions of each region (empty for a leaf, which has one variable).
    root : int
    """

    n_variables: int
    scopes: list = field(default_factory=list)
    children: list = field(default_factory=list)
    root: int = -1

    def add(self, scope, children=()):
        self.scopes.append(tuple(int(v) for v in scope))
        self.children.append(tuple(children))
        return len(self.scopes) - 1

    @property
    def leaves(self):
        return [i for i, c in enumerate(self.children) if not c]

    def height(self, i=None):
        """Height of region ``i`` (0 for a leaf); of the root when None."""
        i = self.root if i is None else i
        if not self.children[i]:
            return 0
        return 1 + max(self.height(c) for c in self.children[i])

    def validate(self):
        """Check the tree: the root covers every variable once, partitions are
        disjoint and cover their parent, leaves are single variables."""
        if sorted(self.scopes[self.root]) != list(range(self.n_variables)):
            raise ValueError("the root region must cover every variable exactly once")
        for i, ch in enumerate(self.children):
            if not ch:
                if len(self.scopes[i]) != 1:
                    raise ValueError(f"leaf region {i} must hold one variable")
                continue
            union = sorted(v for c in ch for v in self.scopes[c])
            if union != sorted(self.scopes[i]):
                raise ValueError(f"children of region {i} do not partition its scope")
        return self


def _split_tree(rg, variables, rng, randomize):
    if len(variables) == 1:
        return rg.add(variables)
    mid = len(variables) // 2
    left = _split_tree(rg, variables[:mid], rng, randomize)
    right = _split_tree(rg, variables[mid:], rng, randomize)
    return rg.add(variables, (left, right))


def random_binary_tree(n_variables, random_state=None):
    """Random balanced binary tree (RAT-SPN style): the variables are shuffled
    once, then split in halves recursively down to single variables (depth
    ``ceil(log2 D)``).
    """
    if n_variables < 1:
        raise ValueError("n_variables must be >= 1")
    rng = np.random.default_rng(random_state) if not isinstance(random_state, np.random.RandomState) else random_state
    perm = [int(v) for v in rng.permutation(n_variables)]
    rg = RegionGraph(n_variables)
    rg.root = _split_tree(rg, perm, rng, True)
    return rg.validate()


def linear_tree(n_variables, random_state=None, shuffle=True):
    """Linear tree (linear vtree, HMM / MPS chain): ``((x1, x2), x3), ...``.

    With ``shuffle`` the variable order is a random permutation.
    """
    if n_variables < 1:
        raise ValueError("n_variables must be >= 1")
    if shuffle:
        rng = np.random.default_rng(random_state) if not isinstance(random_state, np.random.RandomState) else random_state
        order = [int(v) for v in rng.permutation(n_variables)]
    else:
        order = list(range(n_variables))
    rg = RegionGraph(n_variables)
    node = rg.add([order[0]])
    scope = [order[0]]
    for v in order[1:]:
        leaf = rg.add([v])
        scope = [*scope, v]
        node = rg.add(scope, (node, leaf))
    rg.root = node
    return rg.validate()


def quad_tree(height, width):
    """Quad-tree for images of ``height x width`` pixels (row-major variable
    index ``r * width + c``): a region (a rectangle) splits into its four
    quadrants (two halves when one side is 1 pixel) down to single pixels.
    """
    if height < 1 or width < 1:
        raise ValueError("height and width must be >= 1")
    rg = RegionGraph(height * width)

    def build(r0, r1, c0, c1):
        scope = [r * width + c for r in range(r0, r1) for c in range(c0, c1)]
        if len(scope) == 1:
            return rg.add(scope)
        rm = (r0 + r1) // 2 if r1 - r0 > 1 else None
        cm = (c0 + c1) // 2 if c1 - c0 > 1 else None
        rows = [(r0, rm), (rm, r1)] if rm is not None else [(r0, r1)]
        cols = [(c0, cm), (cm, c1)] if cm is not None else [(c0, c1)]
        ch = [build(a, b, c, d) for a, b in rows for c, d in cols]
        return rg.add(scope, ch)

    rg.root = build(0, height, 0, width)
    return rg.validate()


def make_region_graph(kind, n_variables, random_state=None, image_shape=None):
    """Region graph by name: 'binary-tree', 'linear-tree' or 'quad-tree'."""
    if isinstance(kind, RegionGraph):
        if kind.n_variables != n_variables:
            raise ValueError(
                f"region graph has {kind.n_variables} variables, data has {n_variables}"
            )
        return kind.validate()
    if kind == "binary-tree":
        return random_binary_tree(n_variables, random_state)
    if kind == "linear-tree":
        return linear_tree(n_variables, random_state)
    if kind == "quad-tree":
        if image_shape is None:
            side = int(round(np.sqrt(n_variables)))
            if side * side != n_variables:
                raise ValueError(
                    "region_graph='quad-tree' needs square images or image_shape; "
                    f"{n_variables} features is not a square"
                )
            image_shape = (side, side)
        h, w = image_shape
        if h * w != n_variables:
            raise ValueError(f"image_shape {image_shape} does not match {n_variables} features")
        return quad_tree(h, w)
    raise ValueError(
        f"region_graph must be 'binary-tree', 'linear-tree', 'quad-tree' or a RegionGraph, got {kind!r}"
    )
