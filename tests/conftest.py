from __future__ import annotations

import uuid

import pytest

from helpers import topics
from helpers.config import load


@pytest.fixture
def settings():
    return load()


@pytest.fixture
def topic(settings):
    """A fresh single-partition topic, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    topics.create_topic(name, settings=settings)
    yield name
    topics.delete_topic(name, settings=settings)


MIXED_TEXT = [
    "Hello, World! hello world",
    "Ça va? Très BIEN — très bien.",
    "naïve café CAFÉ cafe\u0301 Straße STRASSE",
    "東京 東京タワー; Москва, москва!",
    "don't stop-me now_now 42 4.2",
]


# Scripts whose marks, case and composition trip tokenizers: Python's \\w splits Devanagari and Thai
# words at their vowel signs; Java 17 knows Unicode 13 while Python knows 14+ (Vithkuqi, U+10570..);
# final sigma, dotted I, Hangul jamo that compose, marks typed in either order, ZWJ emoji.
MULTILINGUAL = [
    "हिन्दी भाषा में लिखा गया वाक्य। नमस्ते!",
    "ภาษาไทย ไม่มีช่องว่าง ระหว่างคำ",
    "ΟΔΥΣΣΕΥΣ Οδυσσεύς ὁ πολύτροπος· ΣΟΦΟΣ σοφός",
    "İSTANBUL istanbul ıstanbul DİYARBAKIR",
    "\u1112\u1161\u11ab\u1100\u1173\u11af 한글 ＦＵＬＬＷＩＤＴＨ ｆｕｌｌ",
    "العَرَبِيَّة اللغة; עִבְרִית שָׁלוֹם",
    "q\u0307\u0323 q\u0323\u0307 ṩ s\u0323\u0307 Å A\u030a Ω",
    "\U00010570\U00010597 \U00010597\U00010570 vithkuqi",
    "👩\u200d💻 coder ✌🏽 peace 🫠 melt",
    "தமிழ் மொழி বাংলা ভাষা ગુજરાતી ਪੰਜਾਬੀ",
    "日本語の文章、句読点。中文，标点！",
    "ǅemal ǈubljana ﬁnance ﬀ ß ẞ ŉ",
    "x\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309 one_two ‿tie⁀",
    "٣٤٥ ४२ ๔๒ Ⅻ ½ ²³",
]


@pytest.fixture
def multilingual_file(tmp_path):
    path = tmp_path / "multilingual.txt"
    path.write_text("\n".join(MULTILINGUAL) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def mixed_file(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(MIXED_TEXT) + "\n", encoding="utf-8")
    return path
