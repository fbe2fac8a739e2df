"""The one exception a learner sees: a single line that says what went wrong and what to do."""


class CourseError(RuntimeError):
    """A failure the user can act on; its message is one line, shown without a traceback."""
