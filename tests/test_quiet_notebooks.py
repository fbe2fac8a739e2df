"""Chapters with JVMs run headless without noise: logs go to files, a learner sees only the lesson."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

NOISE = re.compile(
    r"\bWARN(ING)?\b"  # a log level, Java's or Python's
    r"|\b(INFO|ERROR|DEBUG)\s+[\w.$]+:"  # a JVM log line: level, logger, message
    r"|^\s+at [\w.$]+\(|Traceback \(most recent call last\)|Exception in thread"  # stack traces
    r"|SLF4J|log4j",
    re.MULTILINE,
)


def shown(cell: dict) -> str:
    """Everything a cell's outputs put in front of a learner."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for kind, value in output.get("data", {}).items():
            if kind.startswith("text/"):
                parts.append("".join(value))
        parts += output.get("traceback", [])
    return "\n".join(parts)


@pytest.mark.parametrize(
    "chapter", ["04_count_with_spark", "05_count_with_flink", "06_count_three_ways_at_once"]
)
def test_a_jvm_chapter_prints_no_log_line_warning_or_stack_trace(chapter, tmp_path):
    executed = tmp_path / f"{chapter}.ipynb"
    run = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=600", "--output", str(executed),
         str(ROOT / "notebooks" / f"{chapter}.ipynb")],
        cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    cells = json.loads(executed.read_text())["cells"]
    noisy = {
        index: NOISE.search(text).group(0)
        for index, cell in enumerate(cells)
        if (text := shown(cell)) and NOISE.search(text)
    }
    assert noisy == {}, f"cells printing noise (cell: first match): {noisy}"
    assert any(shown(cell) for cell in cells)  # it did show something
