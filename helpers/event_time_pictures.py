"""Pictures of event time: windows on an event-time axis, and a watermark following the newest event.

Chapter 04 counts the same stamped words in tumbling, sliding and session windows; its picture puts a
word's records (ticks) above the windows they fell in, so "which window holds which record" is seen,
not read from three tables. Chapter 05 holds Flink's watermark back with an idle partition; its
picture shows the newest event time running on while the watermark waits, then follows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from helpers.picture import Picture

LANE_COLORS = ("#1971c2", "#e8590c", "#2f9e44", "#9c36b5")


def windows_picture(
    windows: Mapping[str, Sequence[Mapping]], stamps: Sequence[float], title: str = ""
) -> Picture:
    """Records at ``stamps`` (seconds) above one lane per kind of window.

    ``windows`` maps a kind ("tumbling 5 s") to its rows, each with ``start``, ``end`` (seconds,
    on the stamps' axis) and ``count``; overlapping windows (sliding ones) are stacked in their lane.
    """
    figure = Figure(figsize=(9, 1.2 + 0.9 * len(windows)), layout="constrained")
    axes = figure.subplots()
    lanes = list(windows)
    top = len(lanes)
    axes.plot(list(stamps), [top] * len(stamps), "|", color="#222222", markersize=14)
    for lane, (kind, color) in enumerate(zip(lanes, LANE_COLORS, strict=False)):
        rows = sorted(windows[kind], key=lambda row: row["start"])
        level = top - 1 - lane
        for index, row in enumerate(rows):
            height = 0.6 / (2 if len(rows) > 1 and _overlaps(rows) else 1)
            offset = (index % 2) * height if _overlaps(rows) else 0.0
            bottom = level - 0.3 + offset
            axes.broken_barh(
                [(row["start"], row["end"] - row["start"])], (bottom, height * 0.9),
                facecolors=color, alpha=0.55, edgecolor=color,
            )  # fmt: skip
            axes.text(
                (row["start"] + row["end"]) / 2, bottom + height * 0.45, str(row["count"]),
                ha="center", va="center", fontsize=9,
            )  # fmt: skip
    axes.set_yticks(range(top + 1), [*reversed(lanes), "records"])
    axes.set_xlabel("event time (s)")
    axes.grid(axis="x", alpha=0.3)
    if title:
        axes.set_title(title, fontsize=10)
    return Picture(figure)


def _overlaps(rows: Sequence[Mapping]) -> bool:
    return any(a["end"] > b["start"] for a, b in zip(rows, rows[1:], strict=False))


def watermark_picture(timeline: Sequence[Mapping], idle_timeout: float | None = None) -> Picture:
    """The newest event time and the watermark (both seconds after the first row's newest) over time.

    ``timeline`` rows hold ``seconds`` (since watching began), ``newest event`` and ``watermark``
    (epoch seconds, or None before there is one) and ``windows`` (emitted so far).
    """
    origin = next(row["newest event"] for row in timeline if row["newest event"] is not None)
    figure = Figure(figsize=(9, 3.2), layout="constrained")
    axes = figure.subplots()
    for key, color in (("newest event", "#1971c2"), ("watermark", "#e8590c")):
        points = [(row["seconds"], row[key] - origin) for row in timeline if row[key] is not None]
        axes.plot([x for x, _ in points], [y for _, y in points], "o-", color=color, label=key)
    if idle_timeout is not None:
        axes.axvline(idle_timeout, color="#868e96", linestyle="--", label="idle timeout")
    windows = axes.twinx()
    windows.step(
        [row["seconds"] for row in timeline], [row["windows"] for row in timeline],
        where="post", color="#2f9e44", alpha=0.6, label="windows emitted",
    )  # fmt: skip
    windows.set_ylabel("windows emitted")
    windows.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("seconds since the job's first count")
    axes.set_ylabel("event time (s)")
    lines, labels = axes.get_legend_handles_labels()
    more, more_labels = windows.get_legend_handles_labels()
    axes.legend(lines + more, labels + more_labels, loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    return Picture(figure)
