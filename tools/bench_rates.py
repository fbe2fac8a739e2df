"""Benchmark: the highest producer rate each engine keeps up with (prints figures; not a test).

For each engine and rate: produce for DURATION seconds while the engine counts, then time how long the
engine needs to catch up after the producer stops. An engine "keeps up" when it catches up within
SETTLE_OK seconds and its counts equal the ledger. Usage: python tools/bench_rates.py [engines] [rates]
"""

import sys
import time

from helpers.demo import run_demo

DURATION = 15.0
SETTLE_OK = 3.0


def main() -> None:
    engines = (sys.argv[1] if len(sys.argv) > 1 else "kafka,spark,flink").split(",")
    rates = [float(r) for r in (sys.argv[2] if len(sys.argv) > 2 else "1000,3000,10000").split(",")]
    print("engines            rate/s   acked   achieved/s  settle_s  match  kept_up", flush=True)
    for engine_set in [engines] if "together" in sys.argv else [[e] for e in engines]:
        for rate in rates:
            started = time.monotonic()
            result, info = run_demo(duration=DURATION, rate=rate, engines=engine_set,
                                    show_progress=False)  # fmt: skip
            settle = info["timings"]["settle"]
            achieved = info["acked"] / info["timings"]["produce"]
            kept = result.match and settle <= SETTLE_OK
            print(f"{','.join(engine_set):18} {rate:7.0f} {info['acked']:7d} {achieved:11.0f} "
                  f"{settle:9.2f}  {str(result.match):5}  {kept}   ({time.monotonic() - started:.0f}s)",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
