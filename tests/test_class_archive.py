"""Class archives: the flag a JVM gets, and when it gets none (no JVM started here)."""

import os
from pathlib import Path

import pytest

from helpers import class_archive, jars
from helpers.config import load
from helpers.engines import JVM_ENGINES
from helpers.java import Java

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path, monkeypatch):
    java = Java(executable=Path("/usr/lib/jvm/some-jdk/bin/java"), version=17)
    monkeypatch.setattr(class_archive, "find_java", lambda: java)  # no `java -version` run here
    monkeypatch.setenv("COURSE_JARS_DIR", str(tmp_path / "jars"))
    monkeypatch.delenv(class_archive.DUMP_VARIABLE, raising=False)
    monkeypatch.delenv(class_archive.SWITCH, raising=False)
    return load()


def test_no_archive_means_no_flag_and_a_made_one_is_mapped(settings):
    for engine in JVM_ENGINES:
        assert class_archive.java_options(engine, settings) == ""
    path = class_archive.archive_path("spark", settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    assert f"-XX:SharedArchiveFile={path}" in class_archive.java_options("spark", settings)
    assert class_archive.java_options("flink", settings) == ""  # one engine's archive only


def test_the_switch_turns_a_present_archive_off(settings, monkeypatch):
    path = class_archive.archive_path("flink", settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    monkeypatch.setenv(class_archive.SWITCH, "0")
    assert class_archive.java_options("flink", settings) == ""


def test_while_building_the_jvm_dumps_instead_of_mapping(settings, monkeypatch, tmp_path):
    monkeypatch.setenv(class_archive.DUMP_VARIABLE, str(tmp_path / "new.jsa"))
    options = class_archive.java_options("spark", settings)
    assert f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}" in options
    assert "SharedArchiveFile" not in options


def test_archives_are_named_by_engine_and_by_what_they_depend_on(settings, monkeypatch):
    spark, flink = (class_archive.archive_path(e, settings) for e in ("spark", "flink"))
    assert spark != flink and spark.suffix == ".jsa" and spark.parent == flink.parent
    monkeypatch.setattr(class_archive, "_engine_jars", lambda engine: [])  # other engine jars
    assert class_archive.archive_path("spark", settings) != spark


def test_a_rebuilt_tokenizer_jar_names_a_new_archive(settings, monkeypatch):
    """The tokenizer jar is on the engines' classpath: a JVM maps no archive made with another one."""
    before = class_archive.archive_path("flink", settings)
    monkeypatch.setattr(class_archive.jvm_tokens, "fingerprint", lambda: "another-tokenizer")
    assert class_archive.archive_path("flink", settings) != before


def test_a_new_archive_keeps_the_newest_few_of_its_engine(tmp_path):
    """Two venvs or two JDKs share one jar cache: making one's archive must not delete the other's."""
    for age in range(6):
        made = tmp_path / f"classes-flink-{age}.jsa"
        made.write_bytes(b"")
        os.utime(made, (1_000_000 - age, 1_000_000 - age))
    (tmp_path / "classes-spark-old.jsa").write_bytes(b"")
    os.utime(tmp_path / "classes-spark-old.jsa", (1, 1))
    jars.keep_newest(tmp_path, "classes-flink-*.jsa", class_archive.KEPT_PER_ENGINE)
    kept = sorted(path.name for path in tmp_path.iterdir())
    newest = [f"classes-flink-{age}.jsa" for age in range(class_archive.KEPT_PER_ENGINE)]
    assert kept == sorted([*newest, "classes-spark-old.jsa"])
