"""Widgets that keep working while a cell awaits: the slider and Stop during ``await view.run_for(…)``.

ipykernel 7.4 hands a widget's message to the widget at once while an async cell awaits, but announces
no "idle" for it. The browser's widget library sends a widget's next change only after that "idle":
the first drag of the slider reaches the kernel, every later one waits for the cell to end. Announcing
"idle" for each such message (with that message as its parent, so no cell takes it for its own end)
lets every change through.
"""

from __future__ import annotations

_PATCHED = "_course_widgets_live"


def keep_widgets_live() -> bool:
    """Patch this process's kernel once (no-op outside a kernel); True if the kernel is patched."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not hasattr(kernel, "dispatch_shell"):
        return False
    if getattr(kernel, _PATCHED, False):
        return True
    dispatch = kernel.dispatch_shell

    async def dispatch_shell(msg, /, subshell_id=None, *, concurrent: bool = False):
        cell = kernel.get_parent("shell")  # the awaiting cell's request, when concurrent
        await dispatch(msg, subshell_id=subshell_id, concurrent=concurrent)
        if concurrent:  # a widget's message handled while a cell awaits: say it is done...
            kernel._publish_status("idle", "shell", parent=kernel.get_parent("shell"))  # noqa: SLF001 — ipykernel's status, so the UI shows the cell as busy
            if cell:  # ...and that the kernel is still busy with the cell (JupyterLab shows it)
                kernel._publish_status("busy", "shell", parent=cell)  # noqa: SLF001 — ipykernel's status, so the UI shows the cell as busy

    kernel.dispatch_shell = dispatch_shell
    setattr(kernel, _PATCHED, True)
    return True
