"""Prompt templates for DynaMaR: a small template language, candidates, diversity and pools.

A template is a string with text slots (``{text}``, ``{text_a}``, ``{text_b}``, ``{query}``,
``{doc}``) and exactly one mask slot ``{mask}``, e.g. ``"{text} It was {mask} ."``. The model
reads the encoder's hidden state at the mask position (no verbalizer), so any wording works;
a *pool* of diverse templates is chosen by greedy max-min selection under the token-level
dissimilarity ``D(a, b) = 0.5 * Ham(a, b) / L + 0.5 * Lev(a, b) / L`` with
``L = max(|a|, |b|)`` (Hamming after right-padding the shorter template).

Example:
    >>> from selectsearch.prompting import Template, generate_candidates, select_pool
    >>> seeds = [Template.parse("{text} It was {mask} ."), Template.parse("{mask} : {text}")]
    >>> pool = select_pool(generate_candidates(seeds), 4)
    >>> [t.source for t in pool][0]
    '{text} It was {mask} .'
"""

from __future__ import annotations

from selectsearch.prompting.fill import FilledPrompt, PreparedTemplate, prepare_template
from selectsearch.prompting.pool import (
    DEFAULT_SEEDS,
    default_seeds,
    dissimilarity,
    generate_candidates,
    hamming,
    levenshtein,
    select_pool,
)
from selectsearch.prompting.template import MASK_SLOT, TEXT_SLOTS, Template, TemplateError

__all__ = [
    "DEFAULT_SEEDS",
    "MASK_SLOT",
    "TEXT_SLOTS",
    "FilledPrompt",
    "PreparedTemplate",
    "Template",
    "TemplateError",
    "default_seeds",
    "dissimilarity",
    "generate_candidates",
    "hamming",
    "levenshtein",
    "prepare_template",
    "select_pool",
]
