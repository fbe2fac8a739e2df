import pytest

from helpers.text import decode, tokenize, words_of

pytestmark = pytest.mark.unit


def test_tokenize_follows_the_seed_rule():
    assert tokenize("Hello, World! hello") == ["hello", "world", "hello"]
    assert tokenize("  --  ") == []
    assert tokenize("") == []


def test_tokenize_is_unicode_correct():
    assert tokenize("Ça va? TRÈS bien") == ["ça", "va", "très", "bien"]
    assert tokenize("東京タワー; Москва") == ["東京タワー", "москва"]
    # the same word typed composed and decomposed is one word
    assert tokenize("café cafe\u0301") == ["café", "café"]


def test_tokenize_keeps_digits_and_underscores_as_word_characters():
    assert tokenize("don't now_now 4.2") == ["don", "t", "now_now", "4", "2"]


def test_decode_reports_why_a_record_is_skipped():
    assert decode(None).skipped == "null"
    assert decode(b"").skipped == "empty"
    assert decode(b"\xff\xfe\xfa").skipped == "not-utf8"
    assert decode(b"ok").text == "ok"
    assert words_of(b"\xc3\x28") == ([], "not-utf8")
    assert words_of(b"One two") == (["one", "two"], None)


def test_marks_stay_in_their_words():
    # Python's own \w would split these at their vowel signs and viramas
    assert tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]
    assert tokenize("ภาษาไทย ดี") == ["ภาษาไทย", "ดี"]


def test_each_character_is_lower_cased_on_its_own():
    # no final-sigma rule: every sigma is one letter, whatever its place
    assert tokenize("ΣΟΦΟΣ σοφός") == ["σοφοσ", "σοφόσ"]
    assert tokenize("İ") == ["i\u0307"]


def test_ascii_fast_path_and_the_full_rule_agree():
    from helpers.text import _words_pattern

    text = "Hello, World! don't now_now 4.2 -- x"
    assert tokenize(text) == _words_pattern().findall(text.lower())
