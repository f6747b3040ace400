"""Template dissimilarity, candidate generation and greedy max-min pool selection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from selectsearch.prompting.template import MASK_SLOT, Template, TemplateError, slot_name

__all__ = [
    "DEFAULT_SEEDS",
    "default_seeds",
    "dissimilarity",
    "generate_candidates",
    "hamming",
    "levenshtein",
    "select_pool",
]

_MASK = "{" + MASK_SLOT + "}"

#: Hand-written seed templates per input form (slots present in the examples).
DEFAULT_SEEDS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("text",): (
        "{text} It was {mask} .",
        "{mask} : {text}",
        "{text} In summary , this is {mask} .",
        "Input : {text} Label : {mask}",
        "{text} ? The answer is {mask} .",
        "Category {mask} - {text}",
    ),
    ("text_a", "text_b"): (
        "{text_a} ? {mask} , {text_b}",
        "{text_a} {mask} {text_b}",
        "Sentence 1 : {text_a} Sentence 2 : {text_b} Relation : {mask}",
        "{mask} : {text_a} | {text_b}",
        "{text_a} . Question : does this mean {text_b} ? Answer : {mask} .",
    ),
    ("query", "doc"): (
        "Query : {query} Product : {doc} Relevant : {mask}",
        "{query} ? {mask} , {doc}",
        "{mask} : {query} | {doc}",
        "Search {query} . Result {doc} . Match {mask} .",
    ),
}

_SEPARATORS = (".", ":", "|", "-", ",", "?")
_CONNECTIVES = (
    ("It was", "It is"),
    ("It was", "All in all , it was"),
    ("this is", "it is"),
    ("The answer is", "Answer :"),
    ("Label :", "Class :"),
    ("Input :", "Text :"),
    ("Relation :", "Relation is"),
    ("Relevant :", "Relevance :"),
)


def default_seeds(slots: Sequence[str]) -> list[Template]:
    """The hand-written seed templates for examples with these text slots.

    Raises:
        TemplateError: no built-in seeds for this combination of slots.
    """
    key = tuple(slots)
    if key not in DEFAULT_SEEDS:
        raise TemplateError(
            f"no built-in templates for slots {key}; pass your own with --template "
            f"(known: {', '.join('+'.join(k) for k in DEFAULT_SEEDS)})"
        )
    return [Template.parse(s) for s in DEFAULT_SEEDS[key]]


def hamming(a: Sequence[str], b: Sequence[str]) -> int:
    """Positions that differ after right-padding the shorter sequence (padding always differs)."""
    n = max(len(a), len(b))
    return sum(1 for i in range(n) if i >= len(a) or i >= len(b) or a[i] != b[i])


def levenshtein(a: Sequence[str], b: Sequence[str]) -> int:
    """Edit distance (insertions, deletions, substitutions of whole tokens)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def dissimilarity(
    a: Template | Sequence[str], b: Template | Sequence[str], *, hamming_weight: float = 0.5
) -> float:
    """Token-level prompt dissimilarity in [0, 1].

    ``w * Ham(a, b) / L + (1 - w) * Lev(a, b) / L`` with ``L = max(|a|, |b|)`` and ``w = 0.5``.

    Example:
        >>> dissimilarity(Template.parse("{text} It was {mask} ."),
        ...               Template.parse("{text} It was {mask} ."))
        0.0
    """
    ta = a.tokens if isinstance(a, Template) else tuple(a)
    tb = b.tokens if isinstance(b, Template) else tuple(b)
    n = max(len(ta), len(tb))
    if n == 0:
        return 0.0
    return hamming_weight * hamming(ta, tb) / n + (1 - hamming_weight) * levenshtein(ta, tb) / n


def _try(tokens: Iterable[str]) -> Template | None:
    try:
        return Template.from_tokens(list(tokens))
    except TemplateError:
        return None


def _move_mask(t: Template) -> list[Template]:
    """The mask (with a neighbouring separator, if any) moved to the front and to the end."""
    toks = list(t.tokens)
    i = toks.index(_MASK)
    rest = toks[:i] + toks[i + 1 :]
    if i + 1 < len(toks) and toks[i + 1] in _SEPARATORS and i + 1 == len(toks) - 1:
        rest = toks[:i] + toks[i + 2 :]
    rest = [x for j, x in enumerate(rest) if not (j == 0 and x in _SEPARATORS)]
    out = [_try([_MASK, ":", *rest]), _try([*rest, _MASK])]
    if rest and rest[-1] not in _SEPARATORS:
        out.append(_try([*rest, ".", _MASK, "."]))
    return [x for x in out if x is not None]


def _swap_separators(t: Template) -> list[Template]:
    seps = sorted({x for x in t.tokens if x in _SEPARATORS}, key=_SEPARATORS.index)
    out = []
    for old in seps:
        for new in _SEPARATORS:
            if new != old:
                cand = _try(new if x == old else x for x in t.tokens)
                if cand is not None:
                    out.append(cand)
    return out


def _connectives(t: Template) -> list[Template]:
    src = " " + t.source + " "
    out = []
    for old, new in _CONNECTIVES:
        for a, b in ((old, new), (new, old)):
            if f" {a} " in src:
                cand = _try(Template.parse(src.replace(f" {a} ", f" {b} ").strip()).tokens)
                if cand is not None:
                    out.append(cand)
    return out


def _word_order(t: Template) -> list[Template]:
    """Swap the two text slots of a pair template (``{text_a}`` <-> ``{text_b}``)."""
    names = [slot_name(x) for x in t.tokens]
    text = [n for n in names if n and n != MASK_SLOT]
    if len(text) != 2:
        return []
    a, b = "{" + text[0] + "}", "{" + text[1] + "}"
    cand = _try(b if x == a else a if x == b else x for x in t.tokens)
    return [cand] if cand is not None else []


def generate_candidates(
    seeds: Sequence[Template | str], *, variants: bool = True
) -> list[Template]:
    """Seeds first (in order), then systematic variants of each seed, without duplicates.

    Variants: mask position (front, end), separators, connectives, and the word order of
    two-slot templates. All candidates keep the seeds' text slots.

    Example:
        >>> cands = generate_candidates(["{text} It was {mask} ."])
        >>> cands[0].source, len(cands) > 5
        ('{text} It was {mask} .', True)
    """
    parsed = [s if isinstance(s, Template) else Template.parse(s) for s in seeds]
    out: dict[tuple[str, ...], Template] = {t.tokens: t for t in parsed}
    if variants:
        for seed in parsed:
            for gen in (_move_mask, _swap_separators, _connectives, _word_order):
                for cand in gen(seed):
                    if set(cand.slots) == set(seed.slots):
                        out.setdefault(cand.tokens, cand)
    return list(out.values())


def select_pool(candidates: Sequence[Template], size: int, *, first: int = 0) -> list[Template]:
    """Greedy max-min selection of ``size`` templates.

    Start from ``candidates[first]``; then repeatedly add the candidate whose minimum
    dissimilarity to the templates chosen so far is largest (ties: the earliest candidate).
    Deterministic for a given candidate order.

    Raises:
        TemplateError: ``size`` < 1 or larger than the number of distinct candidates.
    """
    unique: list[Template] = list({t.tokens: t for t in candidates}.values())
    if size < 1 or size > len(unique):
        raise TemplateError(
            f"pool size {size} must be between 1 and {len(unique)} (the candidates)"
        )
    chosen = [unique[first]]
    nearest = [dissimilarity(unique[first], t) for t in unique]
    nearest[first] = -1.0
    while len(chosen) < size:
        best = max(range(len(unique)), key=lambda i: (nearest[i], -i))
        chosen.append(unique[best])
        for i, t in enumerate(unique):
            if nearest[i] >= 0:
                nearest[i] = min(nearest[i], dissimilarity(unique[best], t))
        nearest[best] = -1.0
    return chosen
