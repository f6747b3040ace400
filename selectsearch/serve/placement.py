"""Which shards each actor group hosts.

Groups are balanced by document count (longest-processing-time greedy: the largest shard goes
to the lightest group that still has room), because a group's search time follows the
documents it scores. Placement is deterministic: the same sizes give the same groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selectsearch.serve.config import ServeError

__all__ = ["check_placement", "plan_groups"]


def plan_groups(shard_sizes: Sequence[int] | np.ndarray, shards: Sequence[int], shards_per_group: int
                ) -> tuple[tuple[int, ...], ...]:
    """Split ``shards`` into ``ceil(len(shards) / shards_per_group)`` groups of at most
    ``shards_per_group`` shards with balanced document counts.

    Args:
        shard_sizes: documents per shard, indexed by shard id.
        shards: the shards to place (those with a Lucene index).
        shards_per_group: capacity of a group.

    Example:
        >>> plan_groups([10, 1, 1, 10], [0, 1, 2, 3], 2)
        ((0, 1), (2, 3))
    """
    if shards_per_group < 1:
        raise ServeError("shards_per_group must be at least 1")
    shards = [int(s) for s in shards]
    if not shards:
        return ()
    n_groups = -(-len(shards) // shards_per_group)
    load = [0] * n_groups
    members: list[list[int]] = [[] for _ in range(n_groups)]
    for s in sorted(shards, key=lambda s: (-int(shard_sizes[s]), s)):
        open_groups = [g for g in range(n_groups) if len(members[g]) < shards_per_group]
        g = min(open_groups, key=lambda g: (load[g], len(members[g]), g))
        members[g].append(s)
        load[g] += int(shard_sizes[s])
    return tuple(tuple(sorted(m)) for m in sorted(members, key=lambda m: min(m)))


def check_placement(placement: Sequence[Sequence[int]], shards: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Validate an explicit placement: every shard in exactly one group, no unknown shard."""
    groups = tuple(tuple(sorted(int(s) for s in g)) for g in placement)
    flat = [s for g in groups for s in g]
    if any(len(g) == 0 for g in groups):
        raise ServeError("placement has an empty group; remove it")
    if len(flat) != len(set(flat)):
        raise ServeError("placement lists a shard in more than one group; use replicas= for copies")
    missing, extra = sorted(set(shards) - set(flat)), sorted(set(flat) - set(shards))
    if missing or extra:
        raise ServeError(f"placement must cover the index's shards exactly: missing {missing}, unknown {extra}")
    return groups
