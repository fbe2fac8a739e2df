"""The live view's picture: words over time, lag over time, and counts per word, in one figure.

Time is what the course is about: Spark's micro-batches show as steps in the words-over-time panel,
Flink's and the plain consumer's record-at-a-time counting as a line that follows the ledger closely.
One matplotlib figure is made once and redrawn in place (rendered to PNG for an ``ipywidgets.Image``),
and the history keeps only the last ``span`` seconds, so memory stays flat however long it runs.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from helpers.engines import ENGINES
from helpers.producer import DEFAULT_WORDS

LEDGER = "ledger"  # the producer's acknowledged words: the truth every engine is checked against
COLORS = {LEDGER: "#222222", **{name: e.colour for name, e in ENGINES.items()}}
MORE_COLORS = ("#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d", "#862e9c")  # other labels


def palette(sources: list[str]) -> dict[str, str]:
    """One colour per source, the same in every panel; two sources never share one.

    An engine keeps its own (so does "flink (resumed)"); any other label, or a second counter of
    the same engine, takes the next unused colour of MORE_COLORS.
    """
    colors: dict[str, str] = {}
    spare = list(MORE_COLORS)
    for source in sources:
        base = source.split(" ")[0]
        own = COLORS.get(source) or COLORS.get(base)
        if own is None or own in colors.values():
            own = spare.pop(0) if spare else "#868e96"
        colors[source] = own
    return colors


LAG_MEANS = {name: e.lag_from for name, e in ENGINES.items()}  # what each engine's lag is from
MAX_WORDS = 12  # words in the per-word panel


@dataclass
class Sample:
    """One moment: seconds since the view started, words counted per source, lag per engine."""

    at: float
    words: dict[str, int]
    lag: dict[str, int | None] = field(default_factory=dict)


class Timeline:
    """The last ``span`` seconds of samples (older ones are dropped as new ones come)."""

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self.started: float | None = None  # the first sample: engines' start-up is not on the axis
        self.samples: deque[Sample] = deque()

    def add(self, words: dict[str, int], lag: dict[str, int | None]) -> Sample:
        """Note totals and lags now."""
        now = time.monotonic()
        if self.started is None:
            self.started = now
        sample = Sample(now - self.started, dict(words), dict(lag))
        self.samples.append(sample)
        while self.samples and sample.at - self.samples[0].at > self.span:
            self.samples.popleft()
        return sample

    def series(self, source: str, what: str = "words") -> tuple[list[float], list[int]]:
        """(times, values) of one source's words (or lag), leaving out moments it was unknown."""
        times, values = [], []
        for sample in self.samples:
            value = getattr(sample, what).get(source)
            if value is not None:
                times.append(sample.at)
                values.append(value)
        return times, values


def word_order(counts: dict[str, int], limit: int = MAX_WORDS) -> list[str]:
    """A fixed order for the per-word panel, so bars never swap places from one frame to the next.

    The course's words in their own order; other text's top words sorted alphabetically.
    """
    if counts and set(counts) <= set(DEFAULT_WORDS):
        return [w for w in DEFAULT_WORDS if w in counts]
    top = sorted(counts, key=lambda w: (-counts[w], w))[:limit]
    return sorted(top)


class LiveChart:
    """Words over time and lag over time (when there are engines) side by side, counts per word below."""

    def __init__(self, sources: list[str], span: float = 60.0, width: float = 9.0) -> None:
        self.sources = sources
        self.engines = [s for s in sources if s != LEDGER]
        self.colors = palette(sources)
        self._history = threading.Lock()  # record() and draw() run in different threads
        self._loss_marks: list = []
        self.timeline = Timeline(span)
        self.words: dict[str, dict[str, int]] = {s: {} for s in sources}  # what is shown now
        self.draws = 0
        self.figure = Figure(
            figsize=(width, 5.4), dpi=80
        )  # a fixed layout: cheaper than constrained
        self.canvas = FigureCanvasAgg(self.figure)
        grid = self.figure.add_gridspec(
            2, 2 if self.engines else 1, left=0.07, right=0.98, top=0.94, bottom=0.06,
            hspace=0.38, wspace=0.18,
        )  # fmt: skip
        self.over_time = self.figure.add_subplot(grid[0, 0])
        self.lag = self.figure.add_subplot(grid[0, 1]) if self.engines else None
        self.per_word = self.figure.add_subplot(grid[1, :])
        self._over_time_lines: dict | None = None
        self._lag_lines: dict | None = None
        self._order: list[str] | None = None
        self._bars: dict = {}

    def update(self, words: dict[str, dict[str, int]], lag: dict[str, int | None]) -> bytes:
        """Add this moment to the history and redraw; the PNG."""
        self.record(words, lag)
        return self.draw()

    def record(self, words: dict[str, dict[str, int]], lag: dict[str, int | None]) -> None:
        """Add this moment to the history (cheap: the live view does it every half second).

        Frames may come seconds apart on a busy machine; the moments between them are kept, so a
        record-by-record engine still draws a smooth line, not steps at the frame rate.
        """
        totals = {source: sum(counts.values()) for source, counts in words.items()}
        with self._history:
            self.words = {source: dict(counts) for source, counts in words.items()}
            self.timeline.add(totals, lag)

    def draw(self) -> bytes:
        """Redraw from the history; the PNG."""
        with self._history:  # set the artists' data; rendering needs no lock
            self._draw_over_time()
            if self.lag is not None:
                self._draw_lag()
            self._draw_per_word()
        self.draws += 1
        return self.png()

    def png(self) -> bytes:
        """Draw once and encode fast (``savefig`` would lay out and draw twice)."""
        self.canvas.draw()
        width, height = self.canvas.get_width_height()
        image = PIL.Image.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba())
        buffer = io.BytesIO()
        image.save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def points(self, source: str) -> int:
        """How many moments of ``source`` the words-over-time panel holds (for checks)."""
        return len(self.timeline.series(source)[0])

    def _lines(self, axes, title: str, what: str) -> dict:
        """One line per source on ``axes``, made once; updates only move their data."""
        sources = self.sources if what == "words" else self.engines
        lines = {}
        for source in sources:
            label = (
                source
                if what == "words"
                else f"{source}: from {LAG_MEANS.get(source, 'its offsets')}"
            )
            ledger = source == LEDGER
            (lines[source],) = axes.plot([], [], drawstyle="steps-post", label=label,
                                         color=self.colors[source], linestyle="--" if ledger else "-",
                                         linewidth=1.2 if ledger else 1.8)  # fmt: skip
        axes.set_title(title, fontsize=10)
        axes.legend(fontsize=7, loc="upper left")
        axes.set_xlabel("seconds since start", fontsize=8)
        axes.tick_params(labelsize=8)
        axes.grid(alpha=0.3)
        return lines

    def _draw_lines(self, axes, lines: dict, what: str) -> None:
        top = 0
        for source, line in lines.items():
            times, values = self.timeline.series(source, what)
            line.set_data(times, values)
            top = max(top, max(values, default=0))
        now = self.timeline.samples[-1].at if self.timeline.samples else 0.0
        axes.set_xlim(max(0.0, now - self.timeline.span), max(now, 10.0))
        axes.set_ylim(0, top * 1.1 + 1)

    def _draw_over_time(self) -> None:
        if self._over_time_lines is None:
            self._over_time_lines = self._lines(self.over_time, "words counted over time", "words")
        self._draw_lines(self.over_time, self._over_time_lines, "words")
        self._mark_losses()

    def lost(self) -> dict[str, int]:
        """Words each counter lost, now: it has read everything (lag 0) yet counted fewer than the ledger.

        A counter that is only behind has a lag; one with lag 0 and a shortfall will never catch up.
        """
        if not self.timeline.samples:
            return {}
        last = self.timeline.samples[-1]
        truth = last.words.get(LEDGER)
        if truth is None:
            return {}
        return {
            source: truth - last.words[source]
            for source in self.engines
            if last.lag.get(source) == 0 and last.words.get(source, truth) < truth
        }

    def _mark_losses(self) -> None:
        """The gap between a counter that lost words and the ledger, marked and labelled on the chart."""
        for mark in self._loss_marks:
            mark.remove()
        self._loss_marks = []
        if not self.timeline.samples:
            return
        last = self.timeline.samples[-1]
        for source, missing in self.lost().items():
            color = self.colors[source]
            counted = last.words[source]
            self._loss_marks += [
                self.over_time.vlines(last.at, counted, counted + missing, colors=color,
                                      linestyles=":", linewidth=2),
                self.over_time.annotate(f"{source}: {missing:,} lost", xy=(last.at, counted),
                                        xytext=(-4, -12), textcoords="offset points", ha="right",
                                        fontsize=8, color=color, fontweight="bold"),
            ]  # fmt: skip

    def _draw_lag(self) -> None:
        if self._lag_lines is None:
            title = "lag: records on the topic not yet read"
            self._lag_lines = self._lines(self.lag, title, "lag")
        self._draw_lines(self.lag, self._lag_lines, "lag")

    def _draw_per_word(self) -> None:
        """Grouped bars in a fixed word order; rebuilt only when the words change, else resized."""
        axes = self.per_word
        reference = self.words.get(LEDGER) or next(iter(self.words.values()), {})
        order = word_order(reference)
        if order != self._order:
            self._order = order
            axes.cla()
            width = 0.8 / max(len(self.sources), 1)
            self._bars = {}
            for i, source in enumerate(self.sources):
                offset = (i - (len(self.sources) - 1) / 2) * width
                self._bars[source] = axes.bar([w + offset for w in range(len(order))],
                                              [0] * len(order), width=width, label=source,
                                              color=self.colors[source])  # fmt: skip
            axes.set_xticks(range(len(order)), order, fontsize=8)
            axes.set_title("count per word, sources side by side", fontsize=10)
            axes.tick_params(labelsize=8)
            if order:
                axes.legend(fontsize=7, ncols=len(self.sources), loc="upper left")
        top = 0
        for source, bars in self._bars.items():
            counts = self.words.get(source, {})
            for bar, word in zip(bars, order, strict=True):
                bar.set_height(counts.get(word, 0))
                top = max(top, counts.get(word, 0))
        axes.set_ylim(0, top * 1.25 + 1)
