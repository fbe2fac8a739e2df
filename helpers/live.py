"""Widgets and live charts: a rate slider bound to the producer, buttons, stats, and a live chart.

The chart (:mod:`helpers.charts`) is a matplotlib figure rendered to PNG into an ``ipywidgets.Image``,
so it needs no JupyterLab extension and is updated from a background thread while the kernel stays
free. End-to-end latency per engine (:mod:`helpers.latency`) shows in the stats line.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import ipywidgets as widgets

from helpers.charts import LEDGER, LiveChart
from helpers.consumers.base import Snapshot, WordCounter
from helpers.kernel_widgets import keep_widgets_live
from helpers.latency import LatencyMeter
from helpers.producer import WordProducer
from helpers.wait import wait_until

RATE_STEPS: tuple[float, ...] = (
    0,
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
    2000,
    5000,
    10000,
    20000,
    math.inf,
)  # the top step is the client's own limit: unthrottled


BACKGROUND_FAILURE = "live view error"  # how a failure in the view's threads is announced


def _rate_label(rate: float) -> str:
    return "max" if math.isinf(rate) else f"{rate:g}"


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%H:%M:%S.%f")[:-5]


def _event_time(snap: Snapshot) -> str:
    """' · event time: newest …, watermark … (N s behind)' for a window engine; '' for others."""
    if snap.newest_event is None:
        return ""
    if snap.watermark is None:
        return f" · event time: newest {_clock(snap.newest_event)}, no watermark yet"
    behind = snap.newest_event - snap.watermark
    return (
        f" · event time: newest {_clock(snap.newest_event)}, watermark {_clock(snap.watermark)} "
        f"({behind:,.1f} s behind)"
    )


class LiveView:
    """Slider, buttons, stats and live charts for a producer and any number of word counters.

    Display it (last expression of a cell); it refreshes itself in the background every ``refresh``
    seconds and stops refreshing once the producer and every counter have stopped.
    """

    def __init__(
        self,
        producer: WordProducer | None = None,
        counters: Sequence[WordCounter] = (),
        refresh: float = 0.5,
    ) -> None:
        self.producer = producer
        self.counters = list(counters)
        self.refresh_every = refresh
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latency: LatencyMeter | None = None
        self._error: str | None = None
        sources = ([LEDGER] if producer is not None else []) + [c.label for c in self.counters]
        self.chart = LiveChart(sources)
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="720px"))
        start_rate = producer.rate if producer else 0.0
        self.slider = widgets.SelectionSlider(
            options=[(_rate_label(r), r) for r in RATE_STEPS],
            value=min(RATE_STEPS, key=lambda r: abs(r - start_rate)),
            description="words/s",
            continuous_update=False,
            disabled=producer is None,
        )
        self.slider.observe(self._on_rate, names="value")
        self.start_button = widgets.Button(description="Start", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self._stop_pressed())
        self.stats = widgets.HTML()
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.slider, self.start_button, self.stop_button]),
                self.stats,
                self.image,
            ]
        )

    # --- wiring --------------------------------------------------------------------------------

    def _on_rate(self, change: dict) -> None:
        if self.producer is not None:
            self.producer.rate = change["new"]

    def _ipython_display_(self) -> None:
        from IPython.display import display

        keep_widgets_live()  # the slider and Stop work during ``await view.run_for(...)`` too
        display(self.widget)
        self.start_updates()

    def start_updates(self) -> None:
        """Refresh stats and charts in a background thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="live-view", daemon=True)
            self._thread.start()

    @property
    def updating(self) -> bool:
        """True while the background refresh runs."""
        return self._thread is not None and self._thread.is_alive()

    def _anything_running(self) -> bool:
        producing = self.producer is not None and self.producer.running
        return producing or any(c.running for c in self.counters)

    def _loop(self) -> None:
        """Stats every ``refresh_every`` s; the chart in a thread of its own, as often as it can draw.

        A frame takes a fraction of a second, more when Spark and Flink share the cores: drawn
        apart, it never holds the numbers back (the asked rate shows as soon as the slider moves).
        """
        shown = threading.Event()  # the numbers' loop ended: the last frame is drawn there
        moment = threading.Event()  # a moment was recorded since the last frame

        def draw() -> None:
            while not shown.is_set():
                if moment.wait(self.refresh_every):
                    moment.clear()
                    self.image.value = self.chart.draw()

        drawer = threading.Thread(
            target=self._guarded, args=(draw,), name="live-chart", daemon=True
        )
        drawer.start()

        def numbers() -> None:
            try:
                while not self._stop.is_set():
                    self.chart.record(*self._refresh_stats())  # every moment, drawn or not
                    moment.set()
                    if not self._anything_running():
                        break
                    self._stop.wait(self.refresh_every)
            finally:
                shown.set()
                drawer.join()
            self.refresh()  # the final numbers and frame

        self._guarded(numbers)
        for error in self.errors:  # the tests look for this line in every chapter's outputs
            print(f"{BACKGROUND_FAILURE}: {error}", file=sys.stderr)

    def _guarded(self, work) -> None:
        """Run ``work``; a failure becomes one line in the view (and in ``errors``), not a trace."""
        try:
            work()
        except Exception as error:
            self._error = self._error or f"{type(error).__name__}: {error}"
            self.stats.value += f"<br><span style='color:crimson'>{self._error}</span>"

    @property
    def errors(self) -> list[str]:
        """What went wrong in the view's background threads (refresh, latency), one line each."""
        latency = self._latency.error if self._latency is not None else None
        return [e for e in (self._error, latency) if e]

    # --- what is shown -------------------------------------------------------------------------

    def _refresh_stats(self) -> tuple[dict, dict]:
        """Update the stats line; the words and lag the chart is to show."""
        lines = []
        words: dict[str, dict[str, int]] = {}
        lag: dict[str, int | None] = {}
        if self.producer is not None:
            s = self.producer.stats()
            lines.append(
                f"<b>producer</b>: sent {s.sent} · acked {s.acked} · failed {s.failed} · "
                f"asked {_rate_label(s.rate)}/s · achieved {s.achieved_rate:,.0f}/s"
                + ("" if s.running else " · stopped")
            )
            words[LEDGER] = s.ledger
        latency = self._latency.percentiles() if self._latency is not None else {}
        for counter in self.counters:
            snap = counter.snapshot()
            shown_lag = "?" if snap.lag is None else snap.lag
            name = counter.label
            p = latency.get(name)
            shown_latency = (
                f" · latency p50 {p['p50']:,.0f} ms, p99 {p['p99']:,.0f} ms" if p else ""
            )
            lines.append(
                f"<b>{name}</b>: {snap.records} records · lag {shown_lag} · "
                f"{snap.rate:,.0f}/s · skipped {snap.skipped_total}{shown_latency}"
                + _event_time(snap)
                + ("" if snap.running else " · stopped")
                + (f" · <span style='color:crimson'>{snap.error}</span>" if snap.error else "")
            )
            words[name] = snap.counts
            lag[name] = snap.lag
        lines += [f"<span style='color:crimson'>{error}</span>" for error in self.errors]
        self.stats.value = "<br>".join(lines)
        return words, lag

    def refresh(self) -> None:
        """Update the stats line and the chart once."""
        self.image.value = self.chart.update(*self._refresh_stats())

    @property
    def latency_ms(self) -> dict[str, dict[str, float] | None]:
        """{engine: {"p50": ms, "p99": ms}} so far (empty without a producer)."""
        return self._latency.percentiles() if self._latency is not None else {}

    # --- control -------------------------------------------------------------------------------

    def start(self) -> LiveView:
        """Start the producer and counters that are not running yet, and the refresh.

        A bar names the counter starting now: the first Spark or Flink counter takes seconds.
        """
        from tqdm.auto import tqdm

        waiting = [c for c in self.counters if c.started_at is None]
        with tqdm(total=len(waiting), desc="starting", unit="counter", leave=False) as bar:
            for counter in waiting:
                bar.set_postfix_str(counter.label)
                counter.start()
                bar.update()
        if self.producer is not None:
            self.producer.start()
            if self.counters and self._latency is None:  # from each record's send to its count
                self._latency = LatencyMeter(self.producer, self.counters).start()
        self.start_updates()
        return self

    def stop(self) -> None:
        """Stop the producer (flushing it), then the counters, then the refresh."""
        if self.producer is not None:
            self.producer.stop()
        for counter in self.counters:
            counter.stop()
        if self._latency is not None:
            self._latency.stop()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self._guarded(self.refresh)  # the final frame; a failure is the view's one line

    async def run_for(self, seconds: float, settle: float = 30.0) -> None:
        """Let it run ``seconds``, stop the producer, let the counters catch up, stop: ``await`` it.

        Awaited, the cell leaves the kernel free: the slider and Stop work while it runs (a cell
        that slept would hold every widget message until it ended). Stop pressed meanwhile ends the
        run at once. Counters still running are given up to ``settle`` seconds to catch up.
        """
        from tqdm.auto import tqdm

        ticks = max(int(seconds * 4), 1)
        with tqdm(total=ticks, desc="running", unit="tick", leave=False) as bar:
            for _ in range(ticks):
                if self.producer is not None and not self.producer.running:
                    break  # Stop was pressed
                await asyncio.sleep(seconds / ticks)
                bar.update()
        if self.producer is not None:
            await asyncio.to_thread(self.producer.stop)
            await self.settle(settle)
        await asyncio.to_thread(self.stop)

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait (with a bar) until every running counter has caught up with the stopped producer."""
        from tqdm.auto import tqdm

        catching_up = _CatchingUp(self)
        deadline = time.monotonic() + timeout
        with tqdm(total=len(self.counters), desc="catching up", unit="counter", leave=False) as bar:
            while True:  # wait_until's loop, but awaiting: the kernel hears the widgets meanwhile
                bar.n = catching_up.done()
                bar.refresh()
                if bar.n == len(self.counters) or time.monotonic() >= deadline:
                    return
                await asyncio.sleep(0.2)

    def _stop_pressed(self) -> None:
        """The Stop button: the producer stops at once; the counters catch up, then stop too.

        The counters' part runs in a thread, so that the button's click returns at once.
        """
        if self.producer is not None:
            self.producer.stop()

        def settle_then_stop(timeout: float = 30.0) -> None:
            catching_up = _CatchingUp(self)
            wait_until(lambda: catching_up.done() == len(self.counters), timeout, "",
                       on_timeout="return")  # fmt: skip
            self.stop()

        threading.Thread(target=settle_then_stop, name="live-view-stop", daemon=True).start()


class _CatchingUp:
    """Which counters of a view have caught up with its stopped producer.

    Caught up: stopped, or its counts equal the ledger, or it has read everything on the topic (lag 0
    for a second with no new record): a counter that lost words catches up all the same.
    """

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self.wanted = view.producer.ledger if view.producer is not None else {}
        self._idle_since: dict[int, tuple[float, int]] = {}

    def done(self) -> int:
        """How many counters have caught up, now."""
        return sum(self._caught_up(i, c) for i, c in enumerate(self.view.counters))

    def _caught_up(self, index: int, counter: WordCounter) -> bool:
        if not counter.running:
            return True
        snap = counter.snapshot()
        if snap.counts == self.wanted:
            return True
        if snap.lag != 0:
            self._idle_since.pop(index, None)
            return False
        since, records = self._idle_since.setdefault(index, (time.monotonic(), snap.records))
        if records != snap.records:
            self._idle_since[index] = (time.monotonic(), snap.records)
            return False
        return time.monotonic() - since >= 1.0


def windows_frame(snapshot, last: int = 6):
    """The latest ``last`` 5-second windows as a table: one row per window, one column per word."""
    import pandas as pd

    frame = pd.DataFrame(snapshot.windows, columns=["start", "end", "word", "count"])
    if frame.empty:
        return frame
    table = frame.pivot_table(index="start", columns="word", values="count", fill_value=0)
    return table.tail(last).astype(int)


class GroupTable:
    """A live table of a consumer group's members: which partitions each owns, records, lag."""

    def __init__(self, group, refresh: float = 0.5) -> None:
        self.group = group
        self.refresh_every = refresh
        self.widget = widgets.HTML()
        self.renders = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Render the members' table once."""
        head = (
            "<tr><th>member</th><th>partitions</th><th>records</th><th>lag</th><th>state</th></tr>"
        )
        rows = "".join(
            f"<tr><td>{r['member']}</td><td>{r['partitions']}</td><td>{r['records']}</td>"
            f"<td>{'' if r['lag'] is None else r['lag']}</td><td>{r['state']}</td></tr>"
            for r in self.group.table()
        )
        self.widget.value = f"<table>{head}{rows}</table>"
        self.renders += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_every):
            self.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self.refresh()
        display(self.widget)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="group-table", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (after one last render)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.refresh()
