"""What the engines' clusters say through their own REST APIs, and the few calls the course makes there.

Spark's master answers ``/json/`` (workers, applications and their cores); Flink's JobManager answers its
REST API (jobs, their parallelism, checkpoints, TaskManagers and slots) and takes commands: stop a job
with a savepoint, cancel one. The same API serves Flink's web UI, so whatever is read here a learner
can see there too.
"""

from __future__ import annotations

import json
import urllib.request

from helpers.errors import CourseError
from helpers.wait import wait_until


def flink_job_parallelism(rest_address: str, job_id: str) -> int:
    """The widest operator of a job on a Flink cluster, read from its REST API (0 if unknown)."""
    job = get_json(f"http://{rest_address}/jobs/{job_id}") or {}
    return max((vertex["parallelism"] for vertex in job.get("vertices", [])), default=0)


def flink_slots(rest_address: str) -> tuple[int, int]:
    """(TaskManagers, slots in all) of a Flink cluster, as its JobManager counts them now."""
    overview = get_json(f"http://{rest_address}/overview") or {}
    return overview.get("taskmanagers", 0), overview.get("slots-total", 0)


def flink_busy_taskmanagers(rest_address: str) -> list[int]:
    """Ids of the TaskManagers whose slots hold a job's tasks now (their ``cluster status`` ids)."""
    answer = get_json(f"http://{rest_address}/taskmanagers") or {}
    return sorted(
        int(tm["id"].rpartition("-")[2])
        for tm in answer.get("taskmanagers", [])
        if tm["id"].startswith("taskmanager-") and tm["freeSlots"] < tm["slotsNumber"]
    )


def flink_input_watermark(rest_address: str, job_id: str, operator: str) -> float | None:
    """The watermark (epoch seconds) reaching the vertices of a job that run ``operator``.

    The lowest subtask's: a window closes when that one passes it. A vertex that reports no input
    watermark (a source's chain) is passed over. None while there is none (Flink says
    Long.MIN_VALUE) or at the end of the input, or the job or the operator is not found.
    """
    job = get_json(f"http://{rest_address}/jobs/{job_id}") or {}
    lowest = []
    for vertex in (v["id"] for v in job.get("vertices", []) if operator in v["name"]):
        metrics = get_json(f"http://{rest_address}/jobs/{job_id}/vertices/{vertex}/watermarks")
        lowest += [int(m["value"]) for m in metrics or [] if m["id"].endswith("InputWatermark")]
    ended = 2**63 - 1  # Long.MAX_VALUE: the input has ended, every window is flushed
    return min(lowest) / 1000 if lowest and 0 < min(lowest) < ended else None


def flink_jobs_named(rest_address: str, name: str) -> list[str]:
    """Ids of the jobs called ``name`` that still run (or restart) on a Flink cluster.

    A job being cancelled is not among them: it writes nothing more.
    """
    overview = get_json(f"http://{rest_address}/jobs/overview") or {}
    ending = ("FINISHED", "FAILED", "CANCELED", "CANCELLING")
    return [
        job["jid"]
        for job in overview.get("jobs", [])
        if job["name"] == name and job["state"] not in ending
    ]


def flink_stop_with_savepoint(
    rest_address: str, job_id: str, directory: str, timeout: float = 120.0
) -> str:
    """Stop a job on a Flink cluster with a savepoint (Flink's REST API); the savepoint's path."""
    trigger = _call(
        f"http://{rest_address}/jobs/{job_id}/stop",
        {"targetDirectory": directory, "drain": False, "formatType": "CANONICAL"},
    )["request-id"]

    def completed() -> dict | None:
        answer = get_json(f"http://{rest_address}/jobs/{job_id}/savepoints/{trigger}") or {}
        done = answer.get("status", {}).get("id") == "COMPLETED"
        return answer.get("operation", {}) if done else None

    operation = wait_until(completed, timeout, "", every=0.5, on_timeout="return")
    if operation is None:
        raise CourseError(f"Flink took over {timeout:.0f} s to stop job {job_id} with a savepoint.")
    if "location" in operation:
        return operation["location"]
    cause = operation.get("failure-cause", {}).get("stack-trace", "?").splitlines()[0]
    raise CourseError(f"Flink could not stop job {job_id} with a savepoint: {cause}")


def flink_cancel(rest_address: str, job_id: str) -> None:
    """Cancel a job on a Flink cluster (its last checkpoint is kept)."""
    _call(f"http://{rest_address}/jobs/{job_id}?mode=cancel", None, method="PATCH")


def _call(url: str, body: dict | None, method: str = "POST") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
    except OSError as error:
        raise CourseError(f"Flink's REST API did not answer {method} {url}: {error}") from None
    return json.loads(text) if text.strip() else {}


def spark_executor_cores(master_ui: str) -> int:
    """Executor cores the running applications of a Spark master hold now, from its JSON page."""
    state = get_json(f"{master_ui}/json/") or {}
    return sum(app["cores"] for app in state.get("activeapps", []))


def get_json(url: str) -> dict | list | None:
    """The JSON a cluster's page answers, or None while it does not answer (not started, or gone)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None
