"""Template language, dissimilarity and greedy max-min pool selection."""

from __future__ import annotations

import itertools

import pytest

from selectsearch.prompting import (
    Template,
    TemplateError,
    default_seeds,
    dissimilarity,
    generate_candidates,
    hamming,
    levenshtein,
    select_pool,
)


def test_parse_round_trip_and_slots() -> None:
    t = Template.parse("{text_a} ? {mask}, {text_b}")
    assert t.slots == ("text_a", "text_b")
    assert Template.parse(t.source) == t


@pytest.mark.parametrize(
    "bad",
    [
        "{text} no mask",
        "{mask} {mask} {text}",
        "{mask} only",
        "{text} {mask} {oops}",
        "{text} {text} {mask}",
    ],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(TemplateError):
        Template.parse(bad)


def test_dissimilarity_identities() -> None:
    a = Template.parse("{text} It was {mask} .")
    assert dissimilarity(a, a) == 0.0
    # disjoint templates of equal length: every position differs, every token substituted
    b = Template.parse("{mask} : {text} Really so")
    assert len(a) == len(b)
    assert not set(a.tokens) - {"{text}", "{mask}"} & set(b.tokens)
    assert dissimilarity(["a", "b", "c"], ["x", "y", "z"]) == 1.0
    x, y = ("p", "q", "r", "s", "t"), ("q", "r", "s", "t", "p")
    assert dissimilarity(x, y) == pytest.approx(0.5 * 5 / 5 + 0.5 * 2 / 5)


def test_hamming_pads_and_levenshtein() -> None:
    assert hamming(["a", "b"], ["a", "b", "c"]) == 1
    assert levenshtein(["a", "b"], ["a", "b", "c"]) == 1
    assert levenshtein(["k", "i", "t", "t", "e", "n"], list("sitting")) == 3
    assert dissimilarity(["a", "b"], ["a", "b", "c"]) == pytest.approx(1 / 3)


def test_dissimilarity_symmetric_and_bounded() -> None:
    cands = generate_candidates(default_seeds(["text"]))
    for a, b in itertools.combinations(cands[:15], 2):
        d = dissimilarity(a, b)
        assert 0.0 < d <= 1.0
        assert d == dissimilarity(b, a)


def test_candidates_keep_slots_and_seeds_first() -> None:
    seeds = default_seeds(["text_a", "text_b"])
    cands = generate_candidates(seeds)
    assert cands[: len(seeds)] == seeds
    assert len({c.tokens for c in cands}) == len(cands)
    assert all(set(c.slots) == {"text_a", "text_b"} for c in cands)
    assert len(generate_candidates(seeds, variants=False)) == len(seeds)


def test_pool_is_deterministic_and_greedy_max_min() -> None:
    cands = generate_candidates(default_seeds(["text"]))
    pool = select_pool(cands, 6)
    assert pool == select_pool(list(cands), 6)
    assert pool[0] == cands[0]
    assert len({t.tokens for t in pool}) == 6
    for k in range(1, len(pool)):
        chosen = pool[:k]
        scores = {
            c.tokens: min(dissimilarity(c, s) for s in chosen) for c in cands if c not in chosen
        }
        assert min(dissimilarity(pool[k], s) for s in chosen) == max(scores.values())
        # ties go to the earliest candidate
        best = max(scores.values())
        first = next(c for c in cands if c.tokens in scores and scores[c.tokens] == best)
        assert pool[k] == first


def test_pool_size_bounds() -> None:
    cands = [Template.parse("{text} {mask}"), Template.parse("{mask} {text}")]
    assert len(select_pool(cands, 2)) == 2
    with pytest.raises(TemplateError):
        select_pool(cands, 3)
    with pytest.raises(TemplateError):
        select_pool(cands, 0)
    with pytest.raises(TemplateError):
        default_seeds(["nope"])


def test_prompting_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, selectsearch.prompting; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
