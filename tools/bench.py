"""`make bench`: our producer and counters beside Kafka's own tools and a bare loop, one broker, one run.

Prints its tables of figures (no assertions; not part of `make test`):
- start-up: each engine's first and warm counter beside the bare engine (tools/startup_probe.py);
- latency: Kafka's EndToEndLatency and each engine's steady state at 500 words/s, all counting at once;
- producers: Kafka's ProducerPerformance (the reference) and WordProducer (UUID keys, exact ledger);
- counters: Kafka's ConsumerPerformance, the bare kafka-python loop (the reference) and each engine.
A counter's rate is n / (its bounded run over n records - the same run over an empty topic), so start-up
is left out and shown on its own. Usage: python tools/bench.py [--records N] [--engines kafka,spark,flink]
[--only startup|latency|throughput]
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

from helpers import broker, class_archive, jars, topics
from helpers.config import PROJECT_ROOT, load
from helpers.engines import JVM_ENGINES
from helpers.java import find_java
from helpers.producer import WordProducer

PRODUCER_PROPS = ["acks=all", "enable.idempotence=true", "linger.ms=5", "batch.size=65536"]


def kafka_tool(settings, main_class: str, *args: str) -> str:
    """Run one of Kafka's tools (kafka-tools jar beside the broker's) and return what it printed."""
    classpath = jars.classpath(settings, "broker") + jars.classpath(settings, "bench")
    done = subprocess.run(
        [str(find_java().executable), "-Xmx512m", "-cp", ":".join(map(str, classpath)),
         main_class, *args],
        capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    return done.stdout


def timed(command: list[str]) -> tuple[float, str]:
    """Wall-clock seconds of a whole command, and its standard output."""
    started = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=1800, check=True, cwd=PROJECT_ROOT
    )
    return time.monotonic() - started, done.stdout


def producer_performance(settings, records: int) -> float:
    topic = topics.fresh_topic("bench-pp", settings=settings)
    out = kafka_tool(
        settings, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
        "--num-records", str(records), "--record-size", "5", "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={settings.bootstrap_servers}", *PRODUCER_PROPS,
    )  # fmt: skip
    return float(re.findall(r"records sent, ([\d.]+) records/sec", out)[-1])


def consumer_performance(settings, topic: str, records: int) -> float:
    out = kafka_tool(
        settings, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
        settings.bootstrap_servers, "--topic", topic, "--messages", str(records),
        "--group", f"bench-cp-{time.time_ns()}",
    )  # fmt: skip
    header, row = [line for line in out.splitlines() if line.strip()][-2:]
    values = dict(zip([h.strip() for h in header.split(",")], row.split(","), strict=False))
    return float(values["fetch.nMsg.sec"])


def end_to_end_latency(settings, records: int = 5000) -> dict[str, float]:
    """Kafka's EndToEndLatency: one record at a time, produce then consume, acks=all; p50/p99 in ms."""
    topic = topics.fresh_topic("bench-e2e", settings=settings)
    out = kafka_tool(
        settings, "org.apache.kafka.tools.EndToEndLatency", settings.bootstrap_servers, topic,
        str(records), "all", "16",
    )  # fmt: skip
    p50, p99 = re.search(r"50th = (\d+), 99th = (\d+)", out).groups()
    return {"p50": float(p50), "p99": float(p99)}


def engine_latencies(engines: str) -> dict:
    """Each engine's send-to-count-shown latency while all of them count a steady 500 words/s."""
    _, out = timed([sys.executable, "-m", "helpers", "demo", "--duration", "60", "--rate", "500",
                    "--engines", engines, "--json"])  # fmt: skip
    return {name: row.get("latency_ms") for name, row in json.loads(out)["engines"].items()}


def probe(*args: str, env: dict | None = None) -> dict:
    """One run of tools/startup_probe.py in a fresh process: its figures."""
    done = subprocess.run(
        [sys.executable, "tools/startup_probe.py", *args], capture_output=True, text=True,
        timeout=900, check=True, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def startup_table(settings, engines: list[str]) -> None:
    """First and warm start per engine beside the bare engine, each the best of two fresh processes."""
    empty = topics.fresh_topic("bench-start", settings=settings)
    rows = []
    for engine in [e for e in engines if e in JVM_ENGINES]:
        class_archive.build(engine, settings, kafka=settings.bootstrap_servers)
        print(f"start-up: {engine} bare, course, course without class archive ...", flush=True)
        bare = min(probe(f"bare-{engine}")["first"] for _ in range(2))
        course = [probe(f"counter-{engine}", empty) for _ in range(2)]
        without = probe(f"counter-{engine}", empty, env={class_archive.SWITCH: "0"})
        primed = probe(f"primed-{engine}", empty)["primed"]
        first, warm = min(c["first"] for c in course), min(c["warm"] for c in course)
        rows.append((engine, bare, first, warm, without["first"], primed))
    topics.delete_topic(empty, settings)
    print("\nStart-up, whole process to the end of a bounded run on an empty topic (best of two):")
    print("| engine | bare engine s | first counter s | ratio | warm counter s | first, no archive s "
          "| first after a background start s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for engine, bare, first, warm, without, primed in rows:
        print(f"| {engine} | {bare:.1f} | {first:.1f} | {first / bare:.2f}x | {warm:.1f} | "
              f"{without:.1f} ({without / bare:.2f}x) | {primed:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--engines", default="kafka,spark,flink")
    parser.add_argument("--only", choices=["startup", "latency", "throughput"], default=None)
    args = parser.parse_args()
    settings = load()
    broker.ensure_running(settings, stop_at_exit=True)  # one it started goes when the bench ends
    jars.fetch(settings, show_progress=True, role="bench")
    engines = args.engines.split(",")
    if args.only in (None, "startup"):
        startup_table(settings, engines)
    if args.only in (None, "latency"):
        latency_table(settings, args.engines)
    if args.only in (None, "throughput"):
        throughput_table(settings, args.records, engines)


def latency_table(settings, engines: str) -> None:
    """Kafka's EndToEndLatency, then every engine's steady-state latency at 500 words/s, all at once."""
    print(
        "latency: Kafka's EndToEndLatency, then every engine at 500 words/s for 60 s ...",
        flush=True,
    )
    latencies = {"EndToEndLatency (Kafka, produce to consume)": end_to_end_latency(settings)}
    for engine, latency in engine_latencies(engines).items():
        latencies[f"{engine} counter (send to count shown, steady)"] = latency
    print(f"\n| {'latency':48} | {'p50 ms':>8} | {'p99 ms':>8} |")
    print(f"|{'-' * 50}|{'-' * 10}|{'-' * 10}|")
    for what, latency in latencies.items():
        p50, p99 = (latency["p50"], latency["p99"]) if latency else (math.nan, math.nan)
        print(f"| {what:48} | {p50:8.1f} | {p99:8.1f} |")


def throughput_table(settings, n: int, engines: list[str]) -> None:
    """Producers and counters on n one-word records, beside Kafka's tools and a bare loop."""
    rows = []  # (what, records/s, reference, exact, note)

    print(f"Kafka's ProducerPerformance, {n:,} records ...", flush=True)
    reference_producer = producer_performance(settings, n)
    rows.append(("ProducerPerformance (Kafka, no keys)", reference_producer, "producer", None, ""))

    print(f"WordProducer, {n:,} words with UUID keys ...", flush=True)
    words = topics.fresh_topic("bench-words", settings=settings)
    producer = WordProducer(rate=math.inf, topic=words, count=n, settings=settings)
    started = time.monotonic()
    producer.start().wait()
    stats = producer.stop()
    rate = stats.acked / (time.monotonic() - started)
    rows.append(("WordProducer (UUID keys, ledger)", rate, "producer", stats.acked == n, ""))
    ledger = stats.ledger

    print("Kafka's ConsumerPerformance ...", flush=True)
    rows.append(("ConsumerPerformance (Kafka)", consumer_performance(settings, words, n), "loop",
                 None, "fetch.nMsg.sec"))  # fmt: skip
    empty = topics.fresh_topic("bench-empty", settings=settings)

    print("the bare kafka-python loop ...", flush=True)
    loop = [sys.executable, "tools/bare_loop.py"]
    idle, _ = timed([*loop, empty])
    full, _ = timed([*loop, words])
    reference_loop = n / (full - idle)
    rows.append(("bare kafka-python loop (reference)", reference_loop, "loop", None,
                 f"run {full:.1f} s, empty {idle:.1f} s"))  # fmt: skip

    for engine in engines:
        print(f"{engine} counter ...", flush=True)
        consume = [sys.executable, "-m", "helpers", "consume", "--engine", engine,
                   "--from-beginning", "--until-idle", "1", "--json", "--topic"]  # fmt: skip
        idle, _ = timed([*consume, empty])
        full, out = timed([*consume, words])
        result = json.loads(out)
        rows.append((f"{engine} counter", n / (full - idle), "loop", result["counts"] == ledger,
                     f"run {full:.1f} s, empty (start-up) {idle:.1f} s"))  # fmt: skip

    reference = {"producer": reference_producer, "loop": reference_loop}
    print(f"\n{n:,} one-word records, one partition, one broker, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"| {'what':40} | {'records/s':>10} | {'ratio':>6} | {'exact':5} | notes")
    print(f"|{'-' * 42}|{'-' * 12}|{'-' * 8}|{'-' * 7}|------")
    for what, rate, against, exact, note in rows:
        ratio = rate / reference[against]
        shown = "" if exact is None else ("yes" if exact else "NO")
        print(f"| {what:40} | {rate:10,.0f} | {ratio:5.2f}x | {shown:5} | {note}")
    print("ratio: producers against ProducerPerformance, counters against the bare loop")


if __name__ == "__main__":
    main()
