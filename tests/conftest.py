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


@pytest.fixture
def mixed_file(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(MIXED_TEXT) + "\n", encoding="utf-8")
    return path
