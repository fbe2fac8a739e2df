"""Wait for a condition in one place: helpers, tests and notebooks alike.

Every "poll until true, or give up" of the course goes through :func:`wait_until`, so each wait has a
bound, a name for its error, and the same answers to the same questions: what if the thing waited for
died meanwhile (``fail_if``), what if asking fails for a moment (``retry``), and what if the caller
would rather carry on than fail (``on_timeout="return"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Literal

from helpers.errors import CourseError


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    every: float = 0.2,
    *,
    fail_if: Callable[[], str | None] | None = None,
    retry: tuple[type[BaseException], ...] = (),
    on_timeout: Literal["raise", "return"] = "raise",
):
    """Poll ``predicate`` until it returns something true, and return that.

    On timeout: a one-line :class:`CourseError` naming ``what`` was awaited and for how long ("Timed
    out after 60 s waiting for JupyterLab to answer."), or with ``on_timeout="return"`` the last
    (false) value. ``fail_if`` is asked first each round: a message it returns is raised at once (a
    process that died will never become ready). ``retry``: exceptions of these types from the predicate
    count as "not yet"; the last one is raised if time runs out while it fails.
    """
    deadline = time.monotonic() + timeout
    while True:
        if fail_if is not None and (why := fail_if()):
            raise CourseError(why)
        try:
            value = predicate()
        except retry:
            if time.monotonic() >= deadline:
                raise
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            if on_timeout == "return":
                return value
            raise CourseError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(every)


def batches_until_idle(
    consumer, idle: float, limit: float, poll_ms: int = 300, done: Callable[[], bool] | None = None
) -> Iterator[dict]:
    """Each non-empty ``consumer.poll()``, until none came for ``idle`` s, or ``limit`` s passed.

    The graders' and the readers' "read until all is read": a topic being read has no end, so the
    end is a quiet spell, or sooner ``done()`` (asked after every poll: e.g. every position at the
    end the topic had). The caller may also stop early (``break``) once it has what it wants.
    """
    started = idle_since = time.monotonic()
    while time.monotonic() - idle_since < idle and time.monotonic() - started < limit:
        batch = consumer.poll(timeout_ms=poll_ms)
        if batch:
            yield batch
            idle_since = time.monotonic()
        if done is not None and done():
            return
