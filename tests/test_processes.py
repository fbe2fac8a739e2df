"""The process room and the one wait: real child processes (Python, not JVMs), no broker."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import processes
from helpers.errors import CourseError
from helpers.wait import batches_until_idle, wait_until

pytestmark = pytest.mark.unit

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
STUBBORN = [  # ignores SIGTERM: only SIGKILL ends it
    sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
    "time.sleep(60)",
]  # fmt: skip


def test_wait_until_returns_the_value_raises_in_one_line_or_returns_on_request():
    answers = iter([0, "", "here"])
    assert wait_until(lambda: next(answers), 5, "an answer", every=0.01) == "here"
    with pytest.raises(CourseError, match=r"^Timed out after 0.1 s waiting for nothing\.$"):
        wait_until(lambda: None, 0.1, "nothing", every=0.02)
    started = time.monotonic()
    assert wait_until(lambda: [], 0.1, "", every=0.02, on_timeout="return") == []
    assert time.monotonic() - started < 1


def test_wait_until_fails_early_and_retries_only_what_it_is_told():
    started = time.monotonic()
    with pytest.raises(CourseError, match="^it died$"):
        wait_until(lambda: False, 30, "never", fail_if=lambda: "it died")
    assert time.monotonic() - started < 1  # at once, not after 30 s
    tries = []

    def flaky():
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("not yet")
        return "ok"

    assert wait_until(flaky, 5, "a flaky call", every=0.01, retry=(ConnectionError,)) == "ok"

    def refused():
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):  # still failing when time runs out: its own error
        wait_until(refused, 0.1, "", every=0.02, retry=(ConnectionError,))
    with pytest.raises(ZeroDivisionError):  # not listed: raised at once
        wait_until(lambda: 1 / 0, 5, "", retry=(ConnectionError,))


class Polled:
    """A consumer's poll, scripted: some batches, then nothing."""

    def __init__(self, batches):
        self.batches = list(batches)

    def poll(self, timeout_ms):
        if self.batches:
            return self.batches.pop(0)
        time.sleep(timeout_ms / 1000)
        return {}


def test_batches_until_idle_yields_what_came_and_ends_after_a_quiet_spell():
    started = time.monotonic()
    got = list(batches_until_idle(Polled([{"a": 1}, {}, {"b": 2}]), idle=0.3, limit=10, poll_ms=50))
    assert got == [{"a": 1}, {"b": 2}]
    assert 0.3 <= time.monotonic() - started < 2


def test_a_logged_child_lives_in_its_own_group_and_terminate_reaps_it(tmp_path):
    log = tmp_path / "child.log"
    child = processes.start_logged(SLEEPER, log)
    assert os.getpgid(child.pid) == child.pid  # its own session: a group to signal whole
    wait_until(lambda: "up" in log.read_text(), 10, "the child to start")
    assert log.read_text().lstrip().startswith("=== start ")
    assert processes.alive(child.pid) and processes.group_alive(child.pid)
    assert not processes.alive(child.pid, running="kafka.Kafka")  # not what a pid file promised
    processes.terminate(child.pid, grace=5)
    assert child.poll() is not None and not processes.alive(child.pid)


def test_a_child_that_ignores_sigterm_is_killed_after_its_grace(tmp_path):
    log = tmp_path / "stubborn.log"
    children = [processes.start_logged(STUBBORN, log) for _ in range(2)]
    wait_until(lambda: log.read_text().count("up") == 2, 10, "the children to start")
    started = time.monotonic()
    processes.stop_groups([c.pid for c in children], grace=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    assert all(c.poll() is not None for c in children)  # reaped by stop_groups itself
    assert not any(processes.group_alive(c.pid) for c in children)


def test_waiting_for_a_child_that_dies_fails_at_once_with_its_log(tmp_path):
    log = tmp_path / "dies.log"
    script = (
        "import sys; print('Error: Too small maximum heap'); print('at a.B(C.java)'); sys.exit(1)"
    )
    child = processes.start_logged([sys.executable, "-c", script], log)
    started = time.monotonic()
    with pytest.raises(CourseError) as failed:
        processes.wait_ready(lambda: False, [processes.Started("worker 1", lambda: child.poll() is None,
                             log)], timeout=30)  # fmt: skip
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert message.startswith(f"The worker 1 exited at start; log {log}: ")
    assert "Too small maximum heap" in message and "at a.B" not in message  # no stack frames
    assert processes.wait_ready(lambda: True, [], timeout=1) is True
    assert processes.wait_ready(lambda: False, [], timeout=0.1) is False


def test_a_taken_port_is_not_free_and_is_named_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not processes.port_is_free("127.0.0.1", port)
        with pytest.raises(
            CourseError, match=rf"^Port {port} \(a test\) is taken; stop what uses it\.$"
        ):
            processes.require_free_port(port, "a test")
    assert processes.port_is_free("127.0.0.1", port)


def test_a_log_past_its_limit_starts_afresh_and_keeps_one_older(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "LOG_LIMIT", 100)
    log = tmp_path / "node.log"
    log.write_text("old run\n" * 20)  # 160 bytes: over the limit
    (tmp_path / "node.log.1").write_text("older still\n")
    child = processes.start_logged([sys.executable, "-c", "print('new run')"], log)
    child.wait(30)
    assert "old run" not in log.read_text() and "new run" in log.read_text()
    assert (tmp_path / "node.log.1").read_text().startswith("old run")
    child = processes.start_logged([sys.executable, "-c", "print('a short one')"], log)
    child.wait(30)
    assert "new run" in log.read_text() and "a short one" in log.read_text()  # under it: appended


def test_a_group_whose_leader_is_a_zombie_is_alive_while_a_member_runs():
    """A launcher script that exits (a zombie until collected) while the JVM it started runs on."""
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 60 & echo $!"], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    member = int(leader.stdout.readline())
    wait_until(lambda: b"State:\tZ" in processes.proc_status(leader.pid), 10, "the leader to exit")
    try:
        assert processes.group_alive(leader.pid)  # the zombie leader alone would say no
    finally:
        os.kill(member, signal.SIGKILL)
    wait_until(lambda: not processes.group_alive(leader.pid), 10, "the member to end")
    leader.wait(5)
