"""Filling templates with text: token ids with the mask kept, text truncated to fit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selectsearch.prompting.template import MASK_SLOT, Template, TemplateError, slot_name

__all__ = ["FilledPrompt", "PreparedTemplate", "prepare_template", "tokenize_fields"]


@dataclass(frozen=True)
class FilledPrompt:
    """Token ids of a filled template (with special tokens) and the index of the mask token."""

    input_ids: list[int]
    mask_position: int


@dataclass(frozen=True)
class PreparedTemplate:
    """A template whose literal parts are already token ids.

    ``parts`` holds either a list of ids (literal text) or a slot name (``"mask"`` or a text
    slot). Build with :func:`prepare_template`; fill with :meth:`fill_ids` or :meth:`fill`.
    """

    template: Template
    parts: tuple[tuple[int, ...] | str, ...]
    cls_id: int
    sep_id: int
    mask_id: int

    @property
    def fixed_length(self) -> int:
        """Tokens the template itself takes: literal tokens, the mask, [CLS] and [SEP]."""
        return 3 + sum(len(p) for p in self.parts if not isinstance(p, str))

    def fill_ids(self, fields: Mapping[str, Sequence[int]], max_length: int) -> FilledPrompt:
        """Fill with already tokenized fields; truncate the longest text first, never the mask.

        Raises:
            TemplateError: the template alone does not fit in ``max_length``, or a slot has no
                field.
        """
        budget = max_length - self.fixed_length
        if budget < 0:
            raise TemplateError(
                f"template {self.template.source!r} needs {self.fixed_length} tokens, more than "
                f"max_length={max_length}; use a shorter template or a larger max_length"
            )
        missing = [s for s in self.template.slots if s not in fields]
        if missing:
            raise TemplateError(
                f"template {self.template.source!r}: no input for slot(s) {missing}"
            )
        lengths = {s: len(fields[s]) for s in self.template.slots}
        while sum(lengths.values()) > budget:  # longest-first truncation
            longest = max(lengths, key=lambda s: (lengths[s], s))
            lengths[longest] -= 1
        ids = [self.cls_id]
        mask_position = -1
        for part in self.parts:
            if part == MASK_SLOT:
                mask_position = len(ids)
                ids.append(self.mask_id)
            elif isinstance(part, str):
                ids.extend(fields[part][: lengths[part]])
            else:
                ids.extend(part)
        ids.append(self.sep_id)
        return FilledPrompt(ids, mask_position)

    def fill(self, tokenizer: Any, fields: Mapping[str, str], max_length: int) -> FilledPrompt:
        """Tokenize the text fields with ``tokenizer`` and fill (see :meth:`fill_ids`)."""
        return self.fill_ids(tokenize_fields(tokenizer, fields), max_length)


def tokenize_fields(tokenizer: Any, fields: Mapping[str, str | None]) -> dict[str, list[int]]:
    """Token ids (no special tokens) of each non-empty field."""
    return {
        k: list(tokenizer(v, add_special_tokens=False)["input_ids"])
        for k, v in fields.items()
        if v is not None
    }


def prepare_template(template: Template | str, tokenizer: Any) -> PreparedTemplate:
    """Tokenize the literal parts of ``template`` once with a BERT-style ``tokenizer``.

    Example:
        >>> from selectsearch.models.encoder import load_tokenizer  # doctest: +SKIP
        >>> p = prepare_template("{text} It was {mask} .", load_tokenizer())  # doctest: +SKIP
        >>> p.fill(load_tokenizer(), {"text": "great"}, 16).mask_position  # doctest: +SKIP
        4
    """
    t = template if isinstance(template, Template) else Template.parse(template)
    for name in ("cls_token_id", "sep_token_id", "mask_token_id"):
        if getattr(tokenizer, name, None) is None:
            raise TemplateError(f"tokenizer has no {name}; DynaMaR needs a BERT-style tokenizer")
    parts: list[tuple[int, ...] | str] = []
    words: list[str] = []

    def flush() -> None:
        if words:
            ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
            parts.append(tuple(ids))
            words.clear()

    for tok in t.tokens:
        slot = slot_name(tok)
        if slot is None:
            words.append(tok)
        else:
            flush()
            parts.append(slot)
    flush()
    return PreparedTemplate(
        t,
        tuple(parts),
        int(tokenizer.cls_token_id),
        int(tokenizer.sep_token_id),
        int(tokenizer.mask_token_id),
    )
