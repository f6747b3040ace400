"""The template language: literal words and punctuation, text slots and one mask slot."""

from __future__ import annotations

import re
from dataclasses import dataclass

from selectsearch.errors import SelectSearchError

__all__ = ["MASK_SLOT", "TEXT_SLOTS", "Template", "TemplateError", "tokenize_template"]

#: The slot replaced by the tokenizer's mask token.
MASK_SLOT = "mask"
#: Slots replaced by (possibly truncated) input text.
TEXT_SLOTS: tuple[str, ...] = ("text", "text_a", "text_b", "query", "doc")

_TOKEN_RE = re.compile(r"\{[A-Za-z_]*\}|[\w']+|[^\w\s]")
_SLOT_RE = re.compile(r"^\{([A-Za-z_]*)\}$")


class TemplateError(SelectSearchError):
    """A template that does not parse: unknown slot, no text slot, or not exactly one mask."""


def tokenize_template(source: str) -> tuple[str, ...]:
    """Split a template into word, punctuation and slot tokens (the unit of dissimilarity).

    Example:
        >>> tokenize_template("{text} It was {mask}.")
        ('{text}', 'It', 'was', '{mask}', '.')
    """
    return tuple(_TOKEN_RE.findall(source))


def slot_name(token: str) -> str | None:
    """The slot name of a ``{slot}`` token, else ``None``."""
    match = _SLOT_RE.match(token)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Template:
    """A parsed template: its tokens (words, punctuation and ``{slot}`` tokens).

    Use :meth:`parse`; ``source`` is the canonical string (tokens joined by single spaces).
    """

    tokens: tuple[str, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        """Parse and validate ``source``.

        Raises:
            TemplateError: unknown slot, repeated text slot, no text slot, or not exactly one
                ``{mask}``.

        Example:
            >>> Template.parse("{text_a} ? {mask} , {text_b}").slots
            ('text_a', 'text_b')
        """
        tokens = tokenize_template(source)
        return cls.from_tokens(tokens, source=source)

    @classmethod
    def from_tokens(
        cls, tokens: tuple[str, ...] | list[str], *, source: str | None = None
    ) -> Template:
        """Build a template from tokens, with the same validation as :meth:`parse`."""
        tokens = tuple(tokens)
        shown = source if source is not None else " ".join(tokens)
        masks = 0
        seen: list[str] = []
        for tok in tokens:
            name = slot_name(tok)
            if name is None:
                if "{" in tok or "}" in tok:
                    raise TemplateError(f"template {shown!r}: stray brace in {tok!r}")
                continue
            if name == MASK_SLOT:
                masks += 1
            elif name in TEXT_SLOTS:
                if name in seen:
                    raise TemplateError(f"template {shown!r}: slot {{{name}}} appears twice")
                seen.append(name)
            else:
                raise TemplateError(
                    f"template {shown!r}: unknown slot {{{name}}}; use one of "
                    + ", ".join("{" + s + "}" for s in (*TEXT_SLOTS, MASK_SLOT))
                )
        if masks != 1:
            raise TemplateError(
                f"template {shown!r}: needs exactly one {{mask}} slot, found {masks}"
            )
        if not seen:
            raise TemplateError(
                f"template {shown!r}: needs at least one text slot such as {{text}}"
            )
        return cls(tokens)

    @property
    def source(self) -> str:
        """Canonical string form (tokens joined by spaces); ``parse(source)`` round-trips."""
        return " ".join(self.tokens)

    @property
    def slots(self) -> tuple[str, ...]:
        """Text slots in order of appearance."""
        return tuple(n for n in (slot_name(t) for t in self.tokens) if n and n != MASK_SLOT)

    def __len__(self) -> int:
        return len(self.tokens)

    def __str__(self) -> str:
        return self.source
