"""The one exception a learner sees: a single line that says what went wrong and what to do."""


class CourseError(RuntimeError):
    """A failure the user can act on; its message is one line, shown without a traceback."""


def first_cause(error: BaseException, limit: int = 300) -> str:
    """The line of a JVM error (Py4J trace) that says what went wrong, not the 60 lines around it."""
    text = str(error)
    for line in text.splitlines():
        if "Exception:" in line or "Error:" in line or "Caused by" in line:
            if "Py4JJavaError" not in line and "error occurred while calling" not in line:
                return line.strip()[:limit]
    return (text.splitlines()[0] if text else type(error).__name__)[:limit]


def no_broker(address: str, error: BaseException) -> CourseError:
    """The error for a broker that does not answer: the address tried, and how to start one."""
    return CourseError(
        f"No Kafka answers at {address} ({type(error).__name__}); "
        "start one with: python -m helpers broker start"
    )
