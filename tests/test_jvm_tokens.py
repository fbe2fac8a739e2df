"""The Java tokenizer Spark and Flink run gives exactly Python's ``tokenize()``, on any bytes, any JDK."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest

from conftest import MIXED_TEXT, MULTILINGUAL
from helpers.java import find_java
from helpers.jvm_tokens import jvm_tokens
from helpers.text import tokens_with_controls

JDKS = sorted(
    {Path(p).resolve() for p in Path("/usr/lib/jvm").glob("*") if (Path(p) / "bin/javac").exists()}
)


def _agree(values, settings):
    java = jvm_tokens(values, settings)
    python = [tokens_with_controls(value) for value in values]
    wrong = [(v, j, p) for v, j, p in zip(values, java, python, strict=True) if j != p]
    assert not wrong, f"{len(wrong)} of {len(values)} differ, e.g. {wrong[:3]}"


def _every_code_point() -> list[bytes]:
    return [chr(c).encode() for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def _random_texts(count: int, seed: int) -> list[bytes]:
    """Short strings mixing marks, jamo, letters of every script, sigma, dotted I and separators."""
    rng = random.Random(seed)
    marks = [c for c in range(0x110000) if unicodedata.combining(chr(c))]
    jamo = list(range(0x1100, 0x1200)) + list(range(0xAC00, 0xAC40))
    tricky = [0x20, 0x41, 0x3A3, 0x3C2, 0x130, 0x5F, 0x2D, 0x1E9E]
    texts = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(1, 12)):
            pick = rng.random()
            pool = marks if pick < 0.3 else jamo if pick < 0.45 else tricky if pick < 0.6 else None
            code = rng.choice(pool) if pool else rng.randrange(0x110000)
            chars.append(chr(code) if not 0xD800 <= code <= 0xDFFF else " ")
        texts.append("".join(chars).encode())
    return texts


def test_java_and_python_agree_on_every_single_code_point(settings):
    _agree(_every_code_point(), settings)


def test_java_and_python_agree_on_random_text_and_bad_records(settings):
    bad = [None, b"", b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\xaf", b"ok\x00ok", b"a\nb\r\nc"]
    corpora = [line.encode() for line in MIXED_TEXT + MULTILINGUAL]
    _agree(bad + corpora + _random_texts(30_000, seed=7), settings)


@pytest.mark.parametrize("jdk", JDKS, ids=[jdk.name for jdk in JDKS])
def test_every_installed_jdk_tokenizes_alike(jdk, settings, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(jdk))
    find_java.cache_clear()
    try:
        assert find_java().home == jdk
        corpora = [line.encode() for line in MIXED_TEXT + MULTILINGUAL]
        _agree(corpora + _random_texts(3_000, seed=11), settings)
    finally:
        monkeypatch.undo()
        find_java.cache_clear()
