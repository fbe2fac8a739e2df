"""The engines' UI links: localhost on a laptop, through the notebook server's proxy behind a hub."""

import pytest

from helpers import ui_links

pytestmark = pytest.mark.unit


def test_on_a_laptop_the_links_are_localhost(monkeypatch):
    monkeypatch.delenv(ui_links.HUB_PREFIX, raising=False)
    assert ui_links.ui_link(4040, "jobs/") == "http://localhost:4040/jobs/"
    assert ui_links.proxied_base(4040) is None
    assert ui_links.browser_link("http://127.0.0.1:8081/#/job/running/x/overview") == (
        "http://localhost:8081/#/job/running/x/overview"
    )


def test_behind_a_hub_the_links_go_through_the_notebook_servers_proxy(monkeypatch):
    monkeypatch.setenv(ui_links.HUB_PREFIX, "/user/ada")
    assert ui_links.ui_link(4040, "/jobs/") == "/user/ada/proxy/4040/jobs/"
    assert ui_links.proxied_base(8081) == "/user/ada/proxy/8081"
    assert ui_links.browser_link("http://localhost:8081/#/job/running/x/overview") == (
        "/user/ada/proxy/8081/#/job/running/x/overview"
    )


def test_another_machines_ui_keeps_its_address(monkeypatch):
    monkeypatch.setenv(ui_links.HUB_PREFIX, "/user/ada")
    remote = "http://flink.example.org:8081/#/job/running/x/overview"
    assert ui_links.browser_link(remote) == remote
