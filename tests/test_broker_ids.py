"""KRaft cluster ids: what the storage tool accepts (no broker started here)."""

import base64
import uuid

import pytest

from helpers import broker

pytestmark = pytest.mark.unit


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    dashed = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))  # encodes to "-AAA…"
    made = iter([dashed, uuid.UUID(int=1)])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(made))
    cluster_id = broker.new_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(uuid.UUID(int=1).bytes).decode().rstrip("=")
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
