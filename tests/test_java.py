import os
import stat

import pytest

from helpers import java
from helpers.errors import CourseError


@pytest.mark.parametrize(
    ("banner", "expected"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
    ],
)
def test_parse_version(banner, expected):
    assert java.parse_version(banner) == expected


def _fake_java(tmp_path, monkeypatch, version: str) -> None:
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2030-01-01' >&2\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    java.find_java.cache_clear()


def test_old_java_is_refused_with_a_one_line_error(tmp_path, monkeypatch):
    _fake_java(tmp_path, monkeypatch, "11.0.2")
    try:
        with pytest.raises(CourseError) as error:
            java.find_java()
    finally:
        java.find_java.cache_clear()
    message = str(error.value)
    assert "Java 17+" in message and "found Java 11" in message and "\n" not in message


def test_a_newer_java_than_tested_gets_a_warning_not_a_refusal(tmp_path, monkeypatch):
    _fake_java(tmp_path, monkeypatch, "27.0.1")
    try:
        with pytest.warns(UserWarning, match="newer than the course has tested"):
            found = java.find_java()
    finally:
        java.find_java.cache_clear()
    assert found.version == 27 and "newer than tested" in found.support


@pytest.mark.parametrize("version", ["17.0.15", "21.0.5", "25.0.1"])
def test_the_supported_lts_releases_are_reported_as_such(version, tmp_path, monkeypatch):
    _fake_java(tmp_path, monkeypatch, version)
    try:
        assert java.find_java().support == "supported"
    finally:
        java.find_java.cache_clear()


def test_no_java_at_all(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    java.find_java.cache_clear()
    try:
        with pytest.raises(CourseError, match="JAVA_HOME"):
            java.find_java()
    finally:
        java.find_java.cache_clear()
    assert os.environ["PATH"] == "/nonexistent"


def test_this_machine_has_java_17_or_newer():
    assert java.find_java().version >= 17
