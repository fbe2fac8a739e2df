"""Binder's postBuild and start, run here: after start, the broker answers and a notebook runs on it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import processes

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.jvm


def test_post_build_then_start_brings_the_broker_up_before_the_command(tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    port = processes.free_port()
    env = {
        **os.environ,
        "PATH": bin_dir
        + os.pathsep
        + os.environ["PATH"],  # `python` is this venv's, as in the image
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{port}",
        "KAFKA_CONTROLLER_PORT": str(processes.free_port()),
        "COURSE_DATA_DIR": str(tmp_path / "data"),
    }
    built = subprocess.run([str(ROOT / "binder" / "postBuild")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    try:
        wrapped = subprocess.run(
            [str(ROOT / "binder" / "start"), "python", "-m", "helpers", "broker", "status", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert wrapped.returncode == 0, wrapped.stderr[-2000:]
        status = json.loads(wrapped.stdout)
        assert status["running"] and status["embedded"], wrapped.stderr[-2000:]
        assert status["bootstrap_servers"] == f"localhost:{port}"
        executed = subprocess.run(
            [sys.executable, "-m", "jupyter", "execute", "--output", str(tmp_path / "out.ipynb"),
             str(ROOT / "notebooks" / "01_create_a_topic.ipynb")],
            cwd=ROOT / "notebooks", env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert executed.returncode == 0, executed.stderr[-3000:]
    finally:
        subprocess.run([sys.executable, "-m", "helpers", "broker", "stop"], env=env, timeout=120)
