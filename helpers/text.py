"""The one rule every engine follows to turn a Kafka record into words.

The seed's Flink tokenizer lower-cased a line and split it on ``\\W+``. Here the same rule is made
Unicode-correct: the text is NFC-normalised first (so "café" typed two ways is one word), lower-cased,
and split on runs of characters that are not letters, digits or '_' in any script; empty pieces are
dropped. Spark and Flink call this very function, so every engine counts exactly the same words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_NON_WORD = re.compile(r"\W+")


def tokenize(text: str) -> list[str]:
    """Words of ``text``: NFC, lower-case, split on non-word characters, empties dropped."""
    normal = unicodedata.normalize("NFC", text).lower()
    return [word for word in _NON_WORD.split(normal) if word]


@dataclass(frozen=True)
class Decoded:
    """A record's value as text, or why it was skipped (``text`` is None then)."""

    text: str | None
    skipped: str | None = None  # "null", "empty" or "not-utf8"


def decode(value: bytes | None) -> Decoded:
    """Safe decoding: a tombstone, an empty value or invalid UTF-8 is a skip, never a crash."""
    if value is None:
        return Decoded(None, "null")
    if not value:
        return Decoded(None, "empty")
    try:
        return Decoded(value.decode("utf-8"))
    except UnicodeDecodeError:
        return Decoded(None, "not-utf8")


def words_of(value: bytes | None) -> tuple[list[str], str | None]:
    """(words, skip reason) for a raw record value; the words are [] when it was skipped."""
    decoded = decode(value)
    if decoded.text is None:
        return [], decoded.skipped
    return tokenize(decoded.text), None


RECORD = "\x00record"  # control keys: tokenize() never yields them (NUL is not a word character)
SKIPPED = "\x00skipped:"


def tokens_with_controls(value: bytes | None) -> list[str]:
    """A record's words plus control keys, so one keyed count also counts records and skips.

    Spark and Flink aggregate these with their own state; ``split_controls`` turns the result back
    into (counts, records, skipped).
    """
    words, skipped = words_of(value)
    return [RECORD, *words] if skipped is None else [RECORD, SKIPPED + skipped]


def split_controls(totals: dict[str, int]) -> tuple[dict[str, int], int, dict[str, int]]:
    """(word counts, records, skipped by reason) from totals keyed by ``tokens_with_controls``."""
    counts = {w: c for w, c in totals.items() if not w.startswith("\x00")}
    skipped = {w.removeprefix(SKIPPED): c for w, c in totals.items() if w.startswith(SKIPPED)}
    return counts, totals.get(RECORD, 0), skipped
