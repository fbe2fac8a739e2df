"""The command line: ``python -m helpers …``. Thin: it parses, calls the rooms of the package, prints.

Every command takes ``--json`` and then prints exactly one JSON object on stdout; failures print a
one-line error (``{"error": …}`` with ``--json``) and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from helpers import broker, engines, jars, topics
from helpers.config import load
from helpers.errors import CourseError


def _print(result: dict, as_json: bool, human: Callable[[dict], str] | None = None) -> None:
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    text = human(result) if human else "\n".join(f"{k}: {v}" for k, v in result.items())
    if text:
        print(text)


def _table(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


# --- commands ------------------------------------------------------------------------------------


def cmd_broker(args: argparse.Namespace) -> dict:
    settings = load()
    if args.action == "start":
        return broker.ensure_running(settings).as_dict()
    if args.action == "stop":
        return broker.stop(settings).as_dict()
    return broker.status(settings).as_dict()


def cmd_cluster(args: argparse.Namespace) -> dict:
    from helpers import cluster

    settings = load()
    if args.action == "start":
        say = (lambda line: None) if args.json else (lambda line: print(line, file=sys.stderr))
        engines = args.spark_workers or args.flink_taskmanagers
        brokers = args.brokers if args.brokers is not None else (0 if engines else 3)
        return cluster.start(
            brokers, port=args.port, settings=settings, say=say,
            spark_workers=args.spark_workers, flink_taskmanagers=args.flink_taskmanagers,
        )  # fmt: skip
    if args.action == "stop":
        return cluster.stop(settings)
    return cluster.status(settings)


def _cluster_human(result: dict) -> str:
    if not result["nodes"] and not result["processes"]:
        return "no cluster here; start one with: python -m helpers cluster start --brokers 3"
    head = [
        f"{name}: {result[key]}  (set {variable} to it)"
        for key, name, variable in (
            ("bootstrap_servers", "bootstrap_servers", "KAFKA_BOOTSTRAP_SERVERS"),
            ("spark_master", "spark_master", "SPARK_MASTER"),
            ("flink_rest", "flink_rest", "FLINK_REST_ADDRESS"),
        )
        if result.get(key)
    ]
    head += [f"{role} web UI: {url}" for role, url in result.get("web_uis", {}).items()]
    rows = [{k: n[k] for k in ("id", "role", "pid", "port", "alive")} for n in result["nodes"]]
    rows += [{k: e[k] for k in ("id", "role", "pid", "port", "alive")} for e in result["processes"]]
    return "\n".join(head) + "\n" + _table(rows)


def cmd_topic(args: argparse.Namespace) -> dict:
    settings = load()
    if args.action == "create":
        return topics.create_topic(args.name, args.partitions, args.replication, settings)
    if args.action == "describe":
        return topics.describe_topic(args.name, settings)
    if args.action == "delete":
        return topics.delete_topic(args.name, settings)
    if args.action == "alter":
        return topics.add_partitions(args.name, args.partitions, settings)
    return topics.group_lag(args.group, args.name, settings)


def cmd_jars(args: argparse.Namespace) -> dict:
    settings = load()
    if args.action == "fetch":
        return jars.fetch(settings, show_progress=not args.json, role=args.role)
    if args.action == "lock":
        locked = jars.write_lock()
        return {"jars": len(locked), "lock": str(jars.LOCK_FILE)}
    return {"missing": [j.coordinate for j in jars.missing(settings)]}


def cmd_produce(args: argparse.Namespace) -> dict:
    import math

    from helpers.producer import WordProducer

    settings = load()
    if not args.input and args.count is None and args.duration is None:
        raise CourseError("Give --count N or --duration S (or --input FILE) so the run ends.")
    if args.input is not None and not Path(args.input).is_file():
        raise CourseError(f"No file {args.input!r}: give --input a UTF-8 text file that exists.")
    if args.rate is not None and not args.rate > 0:
        raise CourseError(
            f"--rate {args.rate:g} sends nothing, so the run would never end: give a rate above 0."
        )
    rate = args.rate
    if rate is None:  # a file is sent whole at full speed; random words at the configured rate
        rate = math.inf if args.input and args.count is None and args.duration is None else None
    words = _vocabulary(args.words)
    late = _late_options(args)
    producer = WordProducer(
        rate=rate,
        topic=args.topic,
        lines=args.input,
        count=args.count,
        duration=args.duration,
        seed=args.seed,
        settings=settings,
        jitter=args.jitter,
        partitions=_partitions_option(args.partitions),
        **({"words": words} if words else {}),
    )
    if late and late["partition"] is not None:  # before the stream: a typo loses no run
        producer.check_partitions([late["partition"]])
    producer.start()
    try:
        producer.wait()
        if late:  # after the stream: stamped before everything an engine has seen on this run
            producer.send_late(**late)
    finally:
        stats = producer.stop()
    result = {"acked": stats.acked, "failed": stats.failed, "ledger": stats.ledger}
    if late:
        result["late"] = dict(sorted(producer.late.items()))
    if stats.failures:
        result["failures"] = stats.failures
        result["error"] = stats.failure_summary()
    if producer.error:
        result["error"] = producer.error
    result["ok"] = stats.failed == 0 and producer.error is None
    return result


def _partitions_option(given: str | None) -> list[int] | None:
    """--partitions 0,1: the partitions to send to (the others stay idle)."""
    if given is None:
        return None
    try:
        chosen = [int(p) for p in given.split(",")]
    except ValueError:
        chosen = []
    if not chosen or min(chosen) < 0:
        raise CourseError(f"--partitions {given!r}: give partition numbers, e.g. --partitions 0,1.")
    return chosen


def _late_options(args: argparse.Namespace) -> dict:
    """--late N [--late-by S] [--late-partition P]: N words stamped S seconds back, after the run."""
    if args.late is None:
        if args.late_by is not None or args.late_partition is not None:
            raise CourseError("--late-by and --late-partition need --late N (how many late words).")
        return {}
    from helpers.producer import MAX_LATE

    if args.late < 1:
        raise CourseError(f"--late {args.late}: give a number of late words of 1 or more.")
    seconds = 600.0 if args.late_by is None else args.late_by
    if not 0 < seconds <= MAX_LATE:
        raise CourseError(
            f"--late-by {seconds:g}: give seconds with 0 < S <= {MAX_LATE:g} (a day)."
        )
    return {"count": args.late, "seconds": seconds, "partition": args.late_partition}


def _vocabulary(given: str | None) -> list[str] | None:
    """``--words a,b,c`` as a list (None: the default words); each must be one word as counted."""
    from helpers.text import tokenize

    if given is None:
        return None
    words = [w.strip() for w in given.split(",") if w.strip()]
    if not words:
        raise CourseError("--words is empty: give comma-separated words, e.g. --words apple,pear.")
    for word in words:
        if len(tokenize(word)) != 1:
            raise CourseError(
                f"--words: {word!r} is not one word as the counters count it (they would see "
                f"{tokenize(word) or 'no word'}); give words like apple,pear."
            )
    return words


def cmd_consume(args: argparse.Namespace) -> dict:
    from helpers.consumers import Bound
    from helpers.consumers.process import write_snapshot
    from helpers.consumers.registry import make_counter

    results = _results_options(args)  # bad flags: one line before the broker is asked anything
    member = _member_option(args)
    topics.describe_topic(args.topic or load().topic)  # a typo: one line, not a count of 0

    bound = Bound(duration=args.duration, count=args.count, until_idle=args.until_idle)
    counter = make_counter(  # without --from-beginning the plain counter resumes with its counts
        args.engine, topic=args.topic, group=args.group, from_beginning=args.from_beginning,
        bound=bound, durable=not (args.from_beginning or args.in_memory or results), **results,
        **member,
    )  # fmt: skip
    if bound.bounded:
        snapshot = counter.run(bound)
    else:  # until Ctrl-C or SIGTERM; a later run on the same --group resumes where this one was
        counter.start()
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        while counter.running and not stopped.wait(0.5):
            if args.snapshot_file:
                write_snapshot(args.snapshot_file, counter.snapshot())
        snapshot = counter.stop()
    if args.snapshot_file:
        write_snapshot(args.snapshot_file, snapshot)
    result = snapshot.as_json()
    result["ok"] = "error" not in result  # an error, or records lost under the counter
    return result


def _results_options(args: argparse.Namespace) -> dict:
    """--results-topic and its guarantee, checked before anything starts."""
    if not args.results_topic:
        if args.exactly_once or args.crash_before_commit is not None:
            raise CourseError("--exactly-once and --crash-before-commit need --results-topic R.")
        return {}
    if args.from_beginning:
        raise CourseError(
            "--results-topic resumes from the group's offsets: drop --from-beginning."
        )
    if args.crash_before_commit is not None and args.crash_before_commit < 1:
        raise CourseError("--crash-before-commit N counts batches from 1; give N >= 1.")
    return {
        "results_topic": args.results_topic,
        "exactly_once": args.exactly_once,
        "crash_before_commit": args.crash_before_commit,
    }


def _member_option(args: argparse.Namespace) -> dict:
    """--member: a static member of the plain counter's group, checked before anything starts."""
    if args.member is None:
        return {}
    if args.engine != "kafka":
        raise CourseError(
            "--member is for --engine kafka: Spark and Flink assign partitions themselves, "
            "outside any consumer group's membership."
        )
    if not args.group or not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", args.member):
        raise CourseError(
            "--member NAME needs --group G and a name of letters, digits, '.', '_' or '-', "
            "e.g. --group g --member one."
        )
    return {"member": args.member}


def _counts_human(result: dict) -> str:
    head = ", ".join(
        f"{k}={v}" for k, v in result.items() if k not in ("ledger", "counts", "windows")
    )
    counts = result.get("ledger") or result.get("counts") or {}
    return head + "\n" + _table([{"word": w, "count": c} for w, c in sorted(counts.items())])


def cmd_demo(args: argparse.Namespace) -> dict:
    from helpers import demo

    broker.ensure_running(
        load(), stop_at_exit=True
    )  # as a notebook does: started here, stopped here
    result, info = demo.run_demo(
        duration=args.duration, rate=args.rate, engines=demo.parse_engines(args.engines),
        input_file=args.input, show_progress=not args.json, partitions=args.partitions,
        rescale=args.rescale,
    )  # fmt: skip
    data = result.as_json()
    if info["rescaled"]:
        data["rescaled"] = info["rescaled"]  # what grew, before and after
    for engine, latency in info["latency_ms"].items():
        data["engines"][engine]["latency_ms"] = latency  # {"p50", "p99"}: send to count shown
    data["latency_steady_after_s"] = info["timings"].get("steady_after")  # None: start-up included
    data["timings_s"] = info["timings"]  # each engine's start, producing, rescaling, settling
    if not args.json:
        print(result)
        print("timings (s):", info["timings"])
        print("latency, send to count shown (ms):", info["latency_ms"])
        if info["rescaled"]:
            print("rescaled while words flowed:", info["rescaled"])
    if info["errors"]:
        data["errors"] = info["errors"]
    data["ok"] = result.match
    return data


def cmd_run(args: argparse.Namespace) -> dict:
    from helpers import roles

    return roles.run()


def cmd_footprint(args: argparse.Namespace) -> dict:
    from helpers import footprint

    if args.chapter not in footprint.WORKLOADS:
        raise CourseError(f"--chapter must be one of {', '.join(footprint.WORKLOADS)}.")
    result = footprint.measure(args.chapter, duration=args.duration, rate=args.rate)
    result["ok"] = result["match"]
    return result


def cmd_lab(args: argparse.Namespace) -> dict:
    from helpers import lab

    if args.settings_only:
        return {"settings": str(lab.install_settings())}
    return lab.run(port=args.port, open_browser=not args.no_browser)


def _describe_human(result: dict) -> str:
    head = f"topic {result['topic']}: {result['messages']} messages"
    return head + "\n" + _table(result["partitions"])


def _lag_human(result: dict) -> str:
    head = f"group {result['group']} on {result['topic']}: lag {result['lag']}"
    return head + "\n" + _table(result["partitions"])


# --- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (also used by tests to check the documented flags exist)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("broker", parents=[common], help="start, stop or inspect the broker")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(run=cmd_broker)

    p = sub.add_parser(
        "cluster", parents=[common], help="a local Kafka cluster of several KRaft nodes"
    )
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument(
        "--brokers",
        type=int,
        help="Kafka nodes, each broker and controller (default 3, or 0 when "
        "only engines are asked for)",
    )
    p.add_argument("--spark-workers", type=int, default=0, help="a Spark master and N workers")
    p.add_argument(
        "--flink-taskmanagers", type=int, default=0, help="a Flink JobManager and N TaskManagers"
    )
    p.add_argument("--port", type=int, help="first client port (default COURSE_CLUSTER_PORT)")
    p.set_defaults(run=cmd_cluster, human=_cluster_human)

    p = sub.add_parser(
        "topic",
        parents=[common],
        help="create, describe, alter (add partitions), delete a topic; group lag",
    )
    p.add_argument("action", choices=["create", "describe", "alter", "delete", "lag"])
    p.add_argument("name")
    p.add_argument(
        "--partitions", type=int, default=1, help="for create; for alter, the new (larger) count"
    )
    p.add_argument(
        "--replication", type=int, help="copies of each partition (default: the broker's, 1 or 3)"
    )
    p.add_argument("--group", default="course-kafka", help="consumer group for 'lag'")
    p.set_defaults(
        run=cmd_topic,
        human={"describe": _describe_human, "lag": _lag_human},
    )

    p = sub.add_parser("jars", parents=[common], help="fetch the locked jars (or re-lock them)")
    p.add_argument("action", choices=["fetch", "lock", "check"])
    p.add_argument(
        "--role", choices=sorted(jars.ROOTS), help="only this role's jars (bench: on request)"
    )
    p.set_defaults(run=cmd_jars)

    p = sub.add_parser(
        "produce", parents=[common], help="send words (or a file's lines) to a topic"
    )
    p.add_argument("--topic")
    p.add_argument("--rate", type=float, help="messages per second (default PRODUCER_RATE)")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--count", type=int)
    limit.add_argument("--duration", type=float)
    p.add_argument("--words", help="comma-separated vocabulary (default one..ten)")
    p.add_argument("--input", help="a UTF-8 text file; each line is one message")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--jitter", type=float, default=0.0,
        help="out of order: stamp each message up to this many seconds before it is sent (0-60)",
    )  # fmt: skip
    p.add_argument(
        "--partitions", help="send only to these partitions, e.g. 0,1 (the others stay idle)"
    )
    p.add_argument(
        "--late", type=int,
        help="then send N late words, stamped --late-by seconds back (default 600): windows drop them",
    )  # fmt: skip
    p.add_argument("--late-by", type=float, help="how late the --late words are, in seconds")
    p.add_argument("--late-partition", type=int, help="send the --late words to this partition")
    p.set_defaults(run=cmd_produce, human=_counts_human)

    p = sub.add_parser("consume", parents=[common], help="count words on a topic with an engine")
    p.add_argument("--engine", choices=engines.NAMES, default="kafka")
    p.add_argument("--topic")
    p.add_argument("--group")
    p.add_argument("--from-beginning", action="store_true")
    p.add_argument(
        "--snapshot-file", help="write the running snapshot here as JSON, twice a second"
    )
    p.add_argument(
        "--in-memory",
        action="store_true",
        help="plain engine: keep counts only in memory (the naive contrast to the durable one)",
    )
    p.add_argument(
        "--results-topic",
        help="write each batch's counts per word to this topic, as increments (Spark: each "
        "micro-batch's; Flink: each closed window's)",
    )
    p.add_argument(
        "--exactly-once",
        action="store_true",
        help="with --results-topic: each increment once (plain: results and offsets in one "
        "transaction; Spark: by batch id; Flink: transactions committed at checkpoints)",
    )
    p.add_argument(
        "--crash-before-commit",
        type=int,
        metavar="N",
        help="with --results-topic: SIGKILL this process after batch N's results, before its "
        "commit (Flink: N=1, before its first checkpoint)",
    )
    p.add_argument(
        "--member",
        metavar="NAME",
        help="kafka: a static member of --group (group.instance.id); restarted under the same "
        "NAME it takes its partitions back at once instead of waiting out the dead one's session "
        "(it does not leave on a clean stop: another member joining next waits that session out)",
    )
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--duration", type=float)
    limit.add_argument("--count", type=int)
    limit.add_argument("--until-idle", type=float)
    p.set_defaults(run=cmd_consume, human=_counts_human)

    p = sub.add_parser(
        "demo", parents=[common], help="end to end: produce, count with engines, reconcile"
    )
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--engines", default="kafka,spark,flink")
    p.add_argument("--partitions", type=int, default=1, help="partitions of the demo's topic")
    p.add_argument(
        "--rescale",
        action="store_true",
        help="halfway, scale out while words flow: +2 partitions, and on a cluster a Spark worker, "
        "a TaskManager and a wider Flink job",
    )
    p.add_argument("--input", help="send this UTF-8 file's lines once instead of random words")
    p.set_defaults(run=cmd_demo, human=lambda r: "")

    p = sub.add_parser("run", parents=[common], help="play the EXAMPLE_GOAL role until stopped")
    p.set_defaults(run=cmd_run)

    p = sub.add_parser("footprint", parents=[common], help="peak memory of a chapter's workload")
    p.add_argument(
        "--chapter", default="06", help="03 (plain Kafka), 04 (Spark), 05 (Flink), 06 (all)"
    )
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=200.0)
    p.set_defaults(run=cmd_footprint)

    p = sub.add_parser("lab", parents=[common], help="broker up, then JupyterLab on the notebooks")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--no-browser", action="store_true")
    p.add_argument(
        "--settings-only",
        action="store_true",
        help="install the course's JupyterLab settings, exit",
    )
    p.set_defaults(run=cmd_lab)

    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args)
    except CourseError as error:
        if args.json:
            print(json.dumps({"error": str(error)}))
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    human = getattr(args, "human", None)
    if isinstance(human, dict):
        human = human.get(getattr(args, "action", ""))
    ok = result.pop("ok", True)
    _print(result, args.json, human)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
