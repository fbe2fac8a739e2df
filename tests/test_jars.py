import dataclasses
import shutil
from importlib.metadata import version

import pytest

from helpers import engines, jars
from helpers.errors import CourseError


def test_lock_covers_every_role_with_checksums():
    locked = jars.read_lock()
    roles = {jar.role for jar in locked}
    assert roles == {"broker", "spark", "flink", "bench"}
    assert jars.ON_REQUEST == {"bench"}  # Kafka's benchmark tools: only for `make bench`
    assert all(len(jar.sha256) == 64 and jar.size > 0 for jar in locked)
    coordinates = {jar.coordinate for jar in locked}
    for roots in jars.ROOTS.values():
        assert set(roots) <= coordinates


def test_pins_match_the_python_packages():
    assert version("pyspark") == engines.SPARK_VERSION
    flink_minor = ".".join(version("apache-flink").split(".")[:2])
    assert engines.FLINK_CONNECTOR_VERSION.endswith(f"-{flink_minor}")
    assert jars.KAFKA_VERSION.startswith("4.")


def test_fetched_jars_verify_and_fetch_again_is_a_no_op(settings):
    assert jars.missing(settings) == []
    assert jars.fetch(settings, show_progress=False)["downloaded"] == 0


@pytest.fixture
def mirror(tmp_path, settings):
    """A file:// mirror holding a copy of two locked jars, one of them corrupted."""
    good, bad = [j for j in jars.read_lock() if j.role == "spark"][:2]
    for jar in (good, bad):
        target = tmp_path / "mirror" / jar.relative_path
        target.parent.mkdir(parents=True)
        shutil.copy(settings.jars_dir / jar.relative_path, target)
    with (tmp_path / "mirror" / bad.relative_path).open("ab") as handle:
        handle.write(b"tampered")
    return tmp_path / "mirror", good, bad


def test_fetch_downloads_from_the_mirror_and_rejects_a_bad_checksum(tmp_path, settings, mirror):
    folder, good, bad = mirror
    local = dataclasses.replace(
        settings, jars_dir=tmp_path / "cache", maven_repository=folder.as_uri()
    )
    url_for = {good.relative_path: good}
    jars._download(f"{folder.as_uri()}/{good.relative_path}", local.jars_dir / good.relative_path,
                   url_for[good.relative_path], _NoProgress())  # fmt: skip
    assert (local.jars_dir / good.relative_path).exists()
    with pytest.raises(CourseError, match="checksum"):
        jars._download(f"{folder.as_uri()}/{bad.relative_path}",
                       local.jars_dir / bad.relative_path, bad, _NoProgress())  # fmt: skip
    assert not (local.jars_dir / bad.relative_path).exists()


def test_missing_jars_name_the_fix(tmp_path, settings):
    empty = dataclasses.replace(settings, jars_dir=tmp_path / "nothing")
    with pytest.raises(CourseError, match="python -m helpers jars fetch"):
        jars.classpath(empty, "broker")


def test_an_unreachable_mirror_is_reported_in_one_line(tmp_path, settings):
    local = dataclasses.replace(
        settings, jars_dir=tmp_path / "cache", maven_repository=(tmp_path / "none").as_uri()
    )
    with pytest.raises(CourseError, match="MAVEN_REPOSITORY_URL"):
        jars.fetch(local, show_progress=False)


class _NoProgress:
    def update(self, _count):
        pass
