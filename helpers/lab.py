"""``make lab``: the broker up, then JupyterLab on the notebooks; both stopped together on exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from helpers import broker
from helpers.config import PROJECT_ROOT, load


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def lab_command(port: int = 8888, open_browser: bool = True) -> list[str]:
    """The JupyterLab server command the course runs (``make lab``, and the footprint's measure)."""
    command = [
        sys.executable, "-m", "jupyterlab",
        f"--notebook-dir={PROJECT_ROOT / 'notebooks'}", f"--ServerApp.port={port}",
    ]  # fmt: skip
    if not open_browser:
        command.append("--no-browser")
    if os.geteuid() == 0:  # containers and CI machines run as root; JupyterLab wants to be told
        command.append("--allow-root")
    return command


def run(port: int = 8888, open_browser: bool = True) -> dict:
    """Start (or reuse) the broker, run JupyterLab until it exits or Ctrl-C, then stop what we started."""
    settings = load()
    status = broker.ensure_running(
        settings, stop_at_exit=True
    )  # dies with us, even if we are killed
    print(
        f"Kafka is up at {settings.bootstrap_servers} (log: {status.log or 'not ours'})", flush=True
    )
    lab = subprocess.Popen(lab_command(port, open_browser))
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        code = lab.wait()
    except KeyboardInterrupt:
        lab.send_signal(signal.SIGINT)
        lab.send_signal(signal.SIGINT)  # JupyterLab asks for a second Ctrl-C to shut down
        try:
            code = lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
            code = lab.wait()
    finally:
        if status.started_here:
            broker.stop(settings)
    return {"jupyterlab_exit": code, "broker_stopped": status.started_here, "ok": True}
