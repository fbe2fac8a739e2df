"""Does the live view's memory stay flat? Run it for a while and print this process's memory over time.

    python tools/live_memory.py --minutes 10 [--engines kafka]

A producer at 200 words/s and the chosen counters on a fresh topic, the live view refreshing as in a
notebook (chart rendered every half second); the resident memory of this Python process is printed every
30 s, then first, last and peak. Figures, not assertions: the charts issue asks for them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import topics  # noqa: E402
from helpers.consumers.registry import make_counter  # noqa: E402
from helpers.environment import ready  # noqa: E402
from helpers.live import LiveView  # noqa: E402
from helpers.producer import WordProducer  # noqa: E402


def rss_mib() -> float:
    """Resident memory of this process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--engines", default="kafka")
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    settings = ready()
    topic = topics.fresh_topic("memory", settings=settings)
    counters = [make_counter(e, topic=topic, settings=settings) for e in args.engines.split(",")]
    view = LiveView(WordProducer(rate=args.rate, topic=topic, settings=settings), counters)
    samples = []
    try:
        view.start()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            samples.append((elapsed, rss_mib()))
            print(
                f"{elapsed:6.0f} s  {samples[-1][1]:7.1f} MiB  draws {view.chart.draws}", flush=True
            )
            time.sleep(30)
    finally:
        view.stop()
        topics.delete_topic(topic, settings)
    after_warmup = [m for t, m in samples if t >= 60] or [m for _, m in samples]
    print(
        f"first {samples[0][1]:.1f} MiB · after 1 min {after_warmup[0]:.1f} · "
        f"last {samples[-1][1]:.1f} · peak {max(m for _, m in samples):.1f} · "
        f"draws {view.chart.draws} · history kept {len(view.chart.timeline.samples)} samples"
    )


if __name__ == "__main__":
    main()
