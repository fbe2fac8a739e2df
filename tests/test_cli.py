import json
import os
import signal
import subprocess
import sys
import time

from helpers.__main__ import build_parser


def cli(*args):
    result = subprocess.run(
        [sys.executable, "-m", "helpers", *args, "--json"],
        capture_output=True, text=True, timeout=180, env=os.environ.copy(),
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr  # exactly one JSON object
    return result.returncode, json.loads(lines[0])


def test_topic_commands(topic):
    code, created = cli("topic", "create", topic + "-x", "--partitions", "2")
    assert code == 0 and created == {
        "topic": topic + "-x",
        "created": True,
        "partitions": 2,
        "replication": 1,
    }
    code, described = cli("topic", "describe", topic + "-x")
    assert code == 0 and len(described["partitions"]) == 2
    code, altered = cli("topic", "alter", topic + "-x", "--partitions", "3")
    assert code == 0 and altered == {"topic": topic + "-x", "before": 2, "partitions": 3}
    code, described = cli("topic", "describe", topic + "-x")
    assert [row["partition"] for row in described["partitions"]] == [0, 1, 2]
    code, refused = cli("topic", "alter", topic + "-x", "--partitions", "1")
    assert code == 1 and "cannot remove partitions" in refused["error"]
    code, deleted = cli("topic", "delete", topic + "-x")
    assert code == 0 and deleted["deleted"] is True
    code, missing = cli("topic", "describe", topic + "-x")
    assert code == 1 and "does not exist" in missing["error"]


def test_produce_then_consume_round_trip(topic):
    code, produced = cli(
        "produce", "--topic", topic, "--count", "300", "--rate", "2000", "--seed", "5"
    )
    assert code == 0 and produced["acked"] == 300 and produced["failed"] == 0
    assert sum(produced["ledger"].values()) == 300
    code, consumed = cli(
        "consume", "--engine", "kafka", "--topic", topic, "--from-beginning", "--until-idle", "1"
    )
    assert code == 0
    assert consumed["engine"] == "kafka" and consumed["records"] == 300
    assert consumed["skipped"] == 0 and consumed["counts"] == produced["ledger"]


def test_produce_a_file_sends_it_whole_once(topic, mixed_file):
    code, produced = cli("produce", "--topic", topic, "--input", str(mixed_file))
    assert code == 0 and produced["acked"] == 5
    code, consumed = cli("consume", "--topic", topic, "--from-beginning", "--count", "5")
    assert consumed["counts"] == produced["ledger"]


def test_produce_to_chosen_partitions_then_late_words_to_another(topic):
    """--partitions leaves the rest idle; --late sends words stamped --late-by back, in the ledger."""
    from kafka import KafkaConsumer, TopicPartition

    idle_topic = topic + "-idle"
    cli("topic", "create", idle_topic, "--partitions", "3")
    code, produced = cli(
        "produce", "--topic", idle_topic, "--count", "100", "--rate", "2000", "--partitions", "0,1",
        "--late", "4", "--late-by", "120", "--late-partition", "2",
    )  # fmt: skip
    assert code == 0 and produced["acked"] == 104 and sum(produced["late"].values()) == 4
    code, described = cli("topic", "describe", idle_topic)
    on = {row["partition"]: row["latest"] for row in described["partitions"]}
    assert on[0] + on[1] == 100 and on[0] > 0 and on[1] > 0 and on[2] == 4, on
    consumer = KafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    late = TopicPartition(idle_topic, 2)
    consumer.assign([late])
    consumer.seek_to_beginning(late)
    records = [r for batch in consumer.poll(timeout_ms=5000).values() for r in batch]
    consumer.close()
    behind = [time.time() - r.timestamp / 1000 for r in records]
    assert len(records) == 4 and all(115 < b < 180 for b in behind), behind
    code, consumed = cli("consume", "--topic", idle_topic, "--from-beginning", "--count", "104")
    assert consumed["counts"] == produced["ledger"]  # the late words are in the ledger
    code, again = cli("produce", "--topic", idle_topic, "--count", "10", "--rate", "2000",
                      "--partitions", "0", "--late", "3")  # fmt: skip
    code, described = cli("topic", "describe", idle_topic)
    now = {row["partition"]: row["latest"] for row in described["partitions"]}
    assert (now[0] - on[0], now[1] - on[1], now[2] - on[2]) == (13, 0, 0), now  # idle stays idle
    cli("topic", "delete", idle_topic)


def test_custom_words(topic):
    code, produced = cli("produce", "--topic", topic, "--count", "50", "--words", "Red,green")
    assert code == 0 and set(produced["ledger"]) == {"red", "green"}


def test_bad_input_is_one_line_a_non_zero_exit_and_quick(topic, tmp_path):
    """Each gets a line saying what to do, exit 1, no traceback, no hang; nothing is sent."""
    flink = ("consume", "--engine", "flink", "--topic", topic)
    three = ("produce", "--topic", topic, "--count", "3")
    bad = {
        ("produce", "--topic", topic, "--input", str(tmp_path / "no-such-file")): "--input",
        ("produce", "--topic", topic, "--count", "3", "--words", ""): "--words is empty",
        ("produce", "--topic", topic, "--count", "3", "--words", "''"): "not one word",
        ("produce", "--topic", topic, "--count", "3", "--rate", "0"): "above 0",
        ("produce", "--topic", topic, "--count", "3", "--jitter", "90"): "0 (in order) to 60",
        ("produce", "--topic", topic, "--count", "3", "--partitions", "a"): "partition numbers",
        ("produce", "--topic", topic, "--count", "3", "--partitions", "0,99"): "not [99]",
        ("produce", "--topic", topic, "--count", "3", "--late-by", "9"): "need --late N",
        ("produce", "--topic", topic, "--count", "3", "--late", "0"): "1 or more",
        ("produce", "--topic", topic, "--count", "3", "--late", "2", "--late-by", "1e9"): "a day",
        (*three, "--late", "2", "--late-partition", "9"): "[9]",
        ("consume", "--engine", "kafka", "--topic", topic + "-typo", "--count", "1"): "not exist",
        ("consume", "--topic", topic, "--exactly-once", "--count", "1"): "need --results-topic",
        (*flink, "--results-topic", "r", "--crash-before-commit", "2"): "--crash-before-commit 1",
        ("consume", "--results-topic", "r", "--from-beginning"): "drop --from",
        ("consume", "--results-topic", "r", "--crash-before-commit", "0"): "N >= 1",
        (
            *flink,
            "--group",
            "g",
            "--member",
            "one",
            "--count",
            "1",
        ): "--member is for --engine kafka",
        ("consume", "--topic", topic, "--member", "one", "--count", "1"): "needs --group G",
        ("consume", "--topic", topic, "--group", "g", "--member", "a b", "--count", "1"): "letters",
    }
    for args, says in bad.items():
        started = time.monotonic()
        code, answer = cli(*args)
        assert code == 1 and says in answer["error"] and "\n" not in answer["error"], (args, answer)
        assert "Traceback" not in answer["error"] and time.monotonic() - started < 10, args
    from helpers import topics

    assert topics.describe_topic(topic)["messages"] == 0  # nothing half-sent


def test_an_unbounded_produce_is_refused_with_advice(topic):
    code, answer = cli("produce", "--topic", topic)
    assert code == 1 and "--count" in answer["error"]


def test_an_unbounded_consume_runs_until_sigterm_then_prints_its_counts(topic):
    from support import produce

    sent = produce(topic, count=300, seed=3)
    consumer = subprocess.Popen(
        [sys.executable, "-m", "helpers", "consume", "--topic", topic, "--json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)
    assert consumer.poll() is None, "an unbounded consume ended by itself"
    consumer.send_signal(signal.SIGTERM)
    out, _ = consumer.communicate(timeout=60)
    assert consumer.returncode == 0
    assert json.loads(out)["counts"] == sent.ledger  # a new group counts from the first record


def test_every_command_takes_json():
    parser = build_parser()
    commands = [
        ["broker", "status"], ["topic", "describe", "x"], ["jars", "fetch"],
        ["produce", "--count", "1"], ["consume", "--count", "1"], ["lab"],
    ]  # fmt: skip
    for command in commands:
        assert parser.parse_args([*command, "--json"]).json is True


def test_broker_status_json():
    code, status = cli("broker", "status")
    assert code == 0 and status["running"] is True and "bootstrap_servers" in status
