"""The cluster's node table as chapter 09 shows it: ports are whole numbers, a missing one is blank."""

import pandas as pd
import pytest

from helpers import cluster

pytestmark = pytest.mark.unit


def test_a_process_without_a_port_shows_blank_and_ports_stay_whole_numbers():
    status = {
        "nodes": [{"role": "broker,controller", "id": 1, "pid": 11, "port": 19592, "alive": True}],
        "processes": [{"role": "spark-worker", "id": 1, "pid": 12, "port": None, "alive": True,
                       "ui": "http://127.0.0.1:8081"}],
    }  # fmt: skip
    shown = pd.DataFrame(cluster.table(status)).to_string()
    assert "19592" in shown and "19592.0" not in shown and "NaN" not in shown
    assert list(pd.DataFrame(cluster.table(status)).columns) == list(cluster.TABLE_COLUMNS)
