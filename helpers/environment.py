"""What a notebook's Setup cell calls: check Java, the jars and the broker, and start what is missing."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from helpers import broker, engines, jars
from helpers.config import Settings, load
from helpers.errors import CourseError
from helpers.java import find_java

PACKAGES = ("kafka-python", "pyspark", "apache-flink", "jupyterlab", "ipywidgets", "matplotlib")


def report(settings: Settings | None = None) -> list[dict]:
    """One row per thing the course needs: what it is, what was found, and whether it is fine."""
    settings = settings or load()
    rows = [{"what": "Python", "found": platform.python_version(), "ok": True}]
    java = find_java()
    rows.append(
        {"what": "Java", "found": f"{java.version} ({java.executable}): {java.support}", "ok": True}
    )
    for package in PACKAGES:
        try:
            rows.append({"what": package, "found": version(package), "ok": True})
        except PackageNotFoundError:
            rows.append({"what": package, "found": "missing: run make setup", "ok": False})
    for role in ("broker", *engines.JVM_ENGINES):
        absent = len(jars.missing(settings, role))
        found = (
            "all present" if not absent else f"{absent} missing: run python -m helpers jars fetch"
        )
        rows.append({"what": f"{role} jars", "found": found, "ok": not absent})
    state = broker.status(settings)
    rows.append(
        {
            "what": "Kafka broker",
            "found": (
                f"{'answering' if state.running else 'not running'} at {state.bootstrap_servers}"
                + (f": Kafka {state.kafka_version}" if state.kafka_version else "")
            ),
            "ok": state.running,
        }
    )
    return rows


def show_course_errors_in_one_line() -> None:
    """In a notebook: show a CourseError as its one line (what went wrong, what to do), no traceback.

    The cell still fails (a test running the notebook sees the error); only the display is short.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def one_line(shell, etype, value, tb, tb_offset=None) -> list[str]:
        lines = [f"{etype.__name__}: {value}"]
        shell._showtraceback(etype, value, lines)  # noqa: SLF001 — IPython's one-line traceback hook
        return lines

    shell.set_custom_exc((CourseError,), one_line)


def ready(settings: Settings | None = None) -> Settings:
    """Java 17+, the broker's jars, a broker answering: start it for this kernel if none is running.

    A broker this call starts is stopped when the kernel exits; one started by ``make lab`` (or your
    own) is reused and left running.
    """
    settings = settings or load()
    show_course_errors_in_one_line()
    find_java()
    status = broker.ensure_running(settings, stop_at_exit=True)
    how = "started for this notebook" if status.started_here else "already running"
    print(f"Java {find_java().version} · Kafka at {settings.bootstrap_servers} ({how})")
    return settings
