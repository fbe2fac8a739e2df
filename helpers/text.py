"""The one rule every engine follows to turn a Kafka record into words.

The seed's Flink tokenizer lower-cased a line and split it on ``\\W+``. Here the same idea is made
Unicode-correct and exact across engines:

1. NFC-normalise (so "café" typed two ways is one word);
2. lower-case each character on its own (so a final "ς" and "Σ" both become "σ": no context rules);
3. a word is a run of letters, marks, digits and connectors (general categories L*, M*, N*, Pc), so
   Devanagari or Thai words keep their vowel signs, which Python's own ``\\w`` would split off.

Python's :mod:`unicodedata` is the single source of every Unicode fact used here. The JVM engines run the
same rule in Java (``helpers/jvm``) from a table that :func:`unicode_table` writes from this very module,
never from the JVM's own Unicode version (Java 17 knows Unicode 13, Python 3.11 knows 14).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

_ASCII_WORDS = re.compile(r"[a-z0-9_]+")
_HANGUL_BASE, _HANGUL_COUNT, _T_COUNT, _VT_COUNT = 0xAC00, 11172, 28, 588


def is_word_char(char: str) -> bool:
    """Letters, marks, numbers and connector punctuation make words."""
    category = unicodedata.category(char)
    return category[0] in "LMN" or category == "Pc"


def lower_char(char: str) -> str:
    """One character lower-cased on its own; final and medial sigma are one letter."""
    return char.lower().replace("ς", "σ")


@functools.cache
def word_ranges() -> tuple[tuple[int, int], ...]:
    """(first, last) code points of every run of word characters, in this Python's Unicode."""
    ranges: list[tuple[int, int]] = []
    start = None
    for code in range(0x110001):
        inside = code < 0x110000 and is_word_char(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            ranges.append((start, code - 1))
            start = None
    return tuple(ranges)


@functools.cache
def _words_pattern() -> re.Pattern[str]:
    spans = "".join(rf"\U{a:08x}-\U{b:08x}" for a, b in word_ranges())
    return re.compile(f"[{spans}]+")


def tokenize(text: str) -> list[str]:
    """Words of ``text``: NFC, lower-case per character, runs of word characters."""
    if text.isascii():  # NFC changes nothing, and the word characters are [a-z0-9_]
        return _ASCII_WORDS.findall(text.lower())
    normal = unicodedata.normalize("NFC", text).lower().replace("ς", "σ")
    return _words_pattern().findall(normal)


def unicode_table() -> Iterator[str]:
    """The rule's Unicode data as lines for the JVM tokenizer (``course/unicode.tsv`` in its jar).

    ``W first last`` word ranges; ``L cp mapped…`` lower-case mappings; ``D cp nfd…`` full canonical
    decompositions; ``C cp class`` combining classes; ``P first second composite`` the pairs that NFC
    composes. Code points are hex.
    """
    yield f"# unicode {unicodedata.unidata_version}"
    for first, last in word_ranges():
        yield f"W {first:x} {last:x}"
    for code in range(0x110000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        lowered = lower_char(char)
        if lowered != char:
            yield f"L {code:x} " + " ".join(f"{ord(c):x}" for c in lowered)
        nfd = unicodedata.normalize("NFD", char)
        if nfd != char:
            yield f"D {code:x} " + " ".join(f"{ord(c):x}" for c in nfd)
        combining = unicodedata.combining(char)
        if combining:
            yield f"C {code:x} {combining:x}"
        pair = _canonical_pair(code)
        if pair and unicodedata.normalize("NFC", chr(pair[0]) + chr(pair[1])) == char:
            yield f"P {pair[0]:x} {pair[1]:x} {code:x}"


def _canonical_pair(code: int) -> tuple[int, int] | None:
    """The two code points a character canonically decomposes into in one step, if it does."""
    offset = code - _HANGUL_BASE
    if 0 <= offset < _HANGUL_COUNT:  # Hangul syllables decompose by arithmetic (Unicode 3.12)
        if offset % _T_COUNT:
            return code - offset % _T_COUNT, 0x11A7 + offset % _T_COUNT
        return 0x1100 + offset // _VT_COUNT, 0x1161 + (offset % _VT_COUNT) // _T_COUNT
    mapping = unicodedata.decomposition(chr(code))
    if not mapping or mapping.startswith("<"):
        return None
    parts = [int(part, 16) for part in mapping.split()]
    return (parts[0], parts[1]) if len(parts) == 2 else None


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
