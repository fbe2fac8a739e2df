"""``make lab``: the broker up, then JupyterLab on the notebooks; both stopped together on exit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from helpers import broker
from helpers.config import PROJECT_ROOT, load


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


SETTINGS = Path(__file__).parent / "lab_settings" / "overrides.json"


def install_settings(prefix: Path | None = None) -> Path:
    """Put the course's JupyterLab defaults where this Python's JupyterLab reads them.

    ``overrides.json`` in ``<prefix>/share/jupyter/lab/settings``: no "official Jupyter news?" pop-up and
    no update check over the charts. ``make lab``, Binder's postBuild and the image all call this.
    """
    target = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / SETTINGS.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SETTINGS, target)
    return target


def lab_command(port: int = 8888, open_browser: bool = True) -> list[str]:
    """The JupyterLab server command the course runs (``make lab``, and the footprint's measure)."""
    command = [
        sys.executable, "-m", "jupyterlab",
        f"--notebook-dir={PROJECT_ROOT / 'notebooks'}", f"--ServerApp.port={port}",
        f"--ServerApp.ip={load().bind_address}",  # loopback unless COURSE_BIND_ADDRESS says otherwise
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
    install_settings()
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
