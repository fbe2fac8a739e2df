"""Links to the engines' web UIs that open from the learner's browser, wherever the kernel runs.

On a laptop the UIs are on ``localhost``. In a Binder or JupyterHub container the browser cannot reach
the container's ports: the notebook server forwards ``<its prefix>proxy/<port>/`` to them
(``jupyter-server-proxy``, installed with the course), so a link goes through it. JupyterHub tells a
single-user server its prefix in ``JUPYTERHUB_SERVICE_PREFIX``.
"""

from __future__ import annotations

import os
import urllib.parse

from helpers import processes

HUB_PREFIX = "JUPYTERHUB_SERVICE_PREFIX"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def hub_prefix() -> str | None:
    """The notebook server's URL prefix under JupyterHub or Binder (``/user/x/``), else None."""
    prefix = os.environ.get(HUB_PREFIX, "").strip()
    if not prefix:
        return None
    return prefix if prefix.endswith("/") else prefix + "/"


def proxied_base(port: int) -> str | None:
    """The path the notebook server forwards to ``port`` (no trailing slash), when behind a hub."""
    prefix = hub_prefix()
    return f"{prefix}proxy/{port}" if prefix else None


def ui_link(port: int, path: str = "") -> str:
    """The address of a UI on this machine's ``port``, as the learner's browser must open it."""
    base = proxied_base(port) or f"http://localhost:{port}"
    return f"{base}/{path.lstrip('/')}"


def browser_link(url: str) -> str:
    """``url`` of a UI on this machine as the learner's browser opens it; another machine's unchanged."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS or parts.port is None:
        return url
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return ui_link(parts.port, path + (f"#{parts.fragment}" if parts.fragment else ""))


def free_port(first: int, host: str = "127.0.0.1", tries: int = 100) -> int:
    """The first port from ``first`` on which nothing listens at ``host`` (Spark's UI picks the same)."""
    for port in range(first, first + tries):
        if processes.port_is_free(host, port):
            return port
    raise OSError(f"No free port in {first}..{first + tries - 1}")
