import sys

import pytest

from helpers import config
from helpers.errors import CourseError

pytestmark = pytest.mark.unit


@pytest.fixture
def clean_env(monkeypatch):
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_TOPIC",
        "PRODUCER_RATE",
        "KAFKA_CONTROLLER_PORT",
        "COURSE_BIND_ADDRESS",
        "SPARK_MASTER",
        "FLINK_REST_ADDRESS",
        "SPARK_EXECUTOR_MEMORY",
        "COURSE_CLUSTER",
        "COURSE_ENGINE_UI",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_seed_variables_are_honoured(clean_env):
    clean_env.setenv("EXAMPLE_KAFKA_SERVER", "kafka:9092")
    clean_env.setenv("EXAMPLE_KAFKA_TOPIC", "example2")
    clean_env.setenv("EXAMPLE_PRODUCER_INTERVAL", "10")
    clean_env.setenv("EXAMPLE_GOAL", "consumer.spark")
    settings = config.load()
    assert settings.bootstrap_servers == "kafka:9092"
    assert settings.topic == "example2"
    assert settings.producer_rate == 100.0  # one word every 10 ms
    assert settings.goal == "consumer.spark"
    assert settings.controller_port == 9093
    assert settings.bind_address == "127.0.0.1"  # nothing open to the network unless asked


def test_new_names_win_over_seed_aliases(clean_env):
    clean_env.setenv("EXAMPLE_KAFKA_SERVER", "kafka:9092")
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:29092")
    clean_env.setenv("EXAMPLE_PRODUCER_INTERVAL", "10")
    clean_env.setenv("PRODUCER_RATE", "3")
    settings = config.load()
    assert settings.bootstrap_servers == "localhost:29092"
    assert settings.first_server == ("localhost", 29092)
    assert settings.controller_port == 29093
    assert settings.producer_rate == 3.0


def test_settings_are_frozen(clean_env):
    settings = config.load()
    with pytest.raises(AttributeError):
        settings.topic = "other"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PRODUCER_RATE", "fast", "not a number"),
        ("PRODUCER_RATE", "-1", "negative"),
        ("EXAMPLE_PRODUCER_INTERVAL", "0", "PRODUCER_RATE"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost", "host:port"),
        ("EXAMPLE_GOAL", "consumer.storm", "EXAMPLE_GOAL"),
        ("COURSE_BIND_ADDRESS", "::", "127.0.0.1 keeps everything on this machine"),
        ("COURSE_CLUSTER", "3,2", "three counts above 0"),
        ("COURSE_CLUSTER", "3,0,2", "set e.g. 3,2,2"),
        ("COURSE_ENGINE_UI", "yes", "not 0 or 1"),
    ],
)
def test_bad_values_give_one_line_errors(clean_env, name, value, fragment):
    clean_env.setenv(name, value)
    with pytest.raises(CourseError) as error:
        config.load()
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_the_engines_knobs_are_settings_too(clean_env):
    assert (config.load().spark_master, config.load().flink_rest_address) == ("local[2]", "")
    clean_env.setenv("SPARK_MASTER", "spark://127.0.0.1:9492")
    clean_env.setenv("FLINK_REST_ADDRESS", "localhost:9592")
    clean_env.setenv("SPARK_EXECUTOR_MEMORY", "1g")
    clean_env.setenv("COURSE_CLUSTER", "1,1,1")
    settings = config.load()
    assert settings.spark_master == "spark://127.0.0.1:9492"
    assert settings.flink_rest_address == "localhost:9592"
    assert (settings.spark_executor_memory, settings.cluster_size) == ("1g", (1, 1, 1))


def test_the_spark_ui_is_on_in_a_notebooks_kernel_and_off_for_scripts(clean_env, monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert config.load().engine_ui is False  # the CLI: a faster start, no link to show
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # as inside a notebook's kernel
    assert config.load().engine_ui is True
    clean_env.setenv("COURSE_ENGINE_UI", "0")
    assert config.load().engine_ui is False
