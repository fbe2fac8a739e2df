"""Wait for a condition in one place: helpers, tests and notebooks alike."""

from __future__ import annotations

import time
from collections.abc import Callable

from helpers.errors import CourseError


def wait_until(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll ``predicate`` until it returns something true (and return that), or fail in one line.

    The error names ``what`` was awaited and for how long, e.g. "Timed out after 60 s waiting for
    JupyterLab to answer."
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise CourseError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(every)
