"""The partitioner registry: every partitioner's name, class, description and options.

The index build (``--partitioner``), benchmark definitions (``partitioner``, ``space``,
``[index.options]``) and loading a saved partition read this registry. A name is the
partitioner's :attr:`~selectsearch.partition.base.Partitioner.name`, which is also the ``kind``
of the :class:`~selectsearch.partition.base.FittedPartition` it saves (so the index's manifest
names it); a partitioner that exists in several feature spaces is registered once per space as
``NAME-SPACE`` (``kmeans-lexical``, ``kmeans-dense``) and chosen with ``--partitioner NAME
--space SPACE`` (:func:`resolve_partitioner`).

A factory (usually the frozen :class:`~selectsearch.partition.base.Partitioner` dataclass) is
called with its options and with ``seed`` when it takes one; its options are its dataclass
fields. Importing this module imports no partitioner.

Add your own in one line (or through the ``selectsearch.partitioners`` entry-point group)::

    from selectsearch.partition.registry import register_partitioner
    register_partitioner("prefix", PrefixPartitioner)   # a Partitioner dataclass

Example:
    >>> resolve_partitioner("kmeans", "dense"), resolve_partitioner("random", "dense")
    ('kmeans-dense', 'random')
"""

from __future__ import annotations

from typing import Any

from selectsearch.errors import SelectSearchError
from selectsearch.registry import Registry

__all__ = ["PARTITIONERS", "SPACES", "make_partitioner", "partitioner_choices", "register_partitioner",
           "resolve_partitioner"]

#: feature spaces a partitioner may come in (``--space``)
SPACES = ("lexical", "dense")

#: every partitioner, built in or added (by :func:`register_partitioner` or the
#: ``selectsearch.partitioners`` entry points)
PARTITIONERS = Registry("partitioner", group="selectsearch.partitioners", context=("seed",))


def register_partitioner(name: str, factory: Any = None, *, description: str | None = None,
                         replace: bool = False) -> Any:
    """Register a partitioner as ``name`` (a decorator without ``factory``).

    Args:
        name: ``NAME`` or ``NAME-SPACE`` (one entry per feature space, ``SPACE`` in :data:`SPACES`);
            its :class:`~selectsearch.partition.base.FittedPartition` must save itself with this
            ``kind`` and be registered with :func:`~selectsearch.partition.base.register_partition`.
        factory: a :class:`~selectsearch.partition.base.Partitioner` dataclass (its fields are
            its options), a function returning one, or a ``"module:attr"`` string.
        description: one line for ``--help`` (default: the docstring's first line).
        replace: replace a partitioner registered under ``name`` before.
    """
    return PARTITIONERS.register(name, factory, description=description, replace=replace)


def partitioner_choices() -> list[str]:
    """The ``--partitioner`` names: registered names, ``NAME-SPACE`` ones as ``NAME``.

    Example:
        >>> partitioner_choices()[:3]
        ['kmeans', 'mico', 'random']
    """
    names = {n.rsplit("-", 1)[0] if n.rsplit("-", 1)[-1] in SPACES else n for n in PARTITIONERS}
    return sorted(names)


def resolve_partitioner(partitioner: str, space: str = "lexical") -> str:
    """The registered name of ``--partitioner partitioner --space space``.

    Raises:
        SelectSearchError: no such partitioner (in that space), naming the choices.
    """
    if space not in SPACES:
        raise SelectSearchError(f"space {space!r} is not one of {', '.join(SPACES)}")
    for name in (f"{partitioner}-{space}", partitioner):
        if name in PARTITIONERS:
            return name
    raise SelectSearchError(f"unknown partitioner {partitioner!r} (space {space!r}); choose one of "
                            f"{', '.join(partitioner_choices())} with --space {'|'.join(SPACES)}")


def make_partitioner(partitioner: str, space: str = "lexical", *, seed: int = 0,
                     options: dict[str, Any] | None = None) -> Any:
    """The :class:`~selectsearch.partition.base.Partitioner` ``--partitioner partitioner --space
    space`` names, with ``options`` (refused, naming the valid ones, when it does not take them).

    Raises:
        SelectSearchError: an unknown partitioner or option, or a required option missing.
    """
    return PARTITIONERS.build(resolve_partitioner(partitioner, space), options, {"seed": seed})


register_partitioner("random", "selectsearch.partition.random_:RandomPartitioner",
                     description="seeded, exactly balanced random shards (the lower baseline)")
register_partitioner("kmeans-lexical", "selectsearch.partition.lexical:LexicalKMeansPartitioner",
                     description="spherical k-means on TF-IDF vectors of a document sample")
register_partitioner("kmeans-dense", "selectsearch.partition.dense:DenseKMeansPartitioner",
                     description="spherical FAISS k-means on encoder embeddings of every document")
register_partitioner("mico", "selectsearch.partition.mico:MicoPartitioner",
                     description="assignment by a trained MICO model's document head (--mico-model)")
