"""dashboards/notifications.py: the severity routing, its Alertmanager rendering checked by the real
`amtool check-config` (Debian prometheus-alertmanager), and `python -m dashboards export` writing it."""

import subprocess

import pytest
import yaml

from dashboards import __main__ as cli
from dashboards.alerts import Severity, alert_definitions
from dashboards.notifications import (
    CATCH_ALL_RECEIVER,
    PAGER_RECEIVER,
    TICKET_RECEIVER,
    alertmanager_config,
    alertmanager_yaml,
    notification_routing,
)
from dashboards.settings import DEFAULT_SETTINGS
from tests.support.tools import require_binary

PAGER, TICKET, CATCH_ALL = (
    "https://pager.example/hook/t0k",
    "https://ticket.example/hook",
    "http://all.example/",
)


def _amtool_check(path) -> str:
    amtool = require_binary("amtool", package="prometheus-alertmanager")
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("urls", "routed"),
    [
        ((PAGER, TICKET, CATCH_ALL), {"critical": PAGER_RECEIVER, "warning": TICKET_RECEIVER}),
        ((PAGER, "", ""), {"critical": PAGER_RECEIVER}),
        (("", TICKET, CATCH_ALL), {"warning": TICKET_RECEIVER}),
        (("", "", ""), {}),
    ],
)
def test_every_combination_is_a_valid_alertmanager_config(tmp_path, urls, routed):
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager_yaml(notification_routing(*urls)))
    out = _amtool_check(path)
    assert f"{1 + len(routed)} receivers" in out
    document = yaml.safe_load(path.read_text())
    route = document["route"]
    assert route["receiver"] == CATCH_ALL_RECEIVER
    children = {c["matchers"][0]: c["receiver"] for c in route.get("routes", [])}
    assert children == {f'severity="{s}"': r for s, r in routed.items()}
    hooks = {r["name"]: [w["url"] for w in r.get("webhook_configs", [])] for r in document["receivers"]}
    assert hooks[CATCH_ALL_RECEIVER] == ([CATCH_ALL] if urls[2] else [])
    configured = {PAGER_RECEIVER: urls[0], TICKET_RECEIVER: urls[1]}
    for receiver in routed.values():
        assert hooks[receiver] == [configured[receiver]]


def test_routes_match_the_severities_the_alerts_carry():
    severities = {str(a.severity) for a in alert_definitions(DEFAULT_SETTINGS) if a.severity is not None}
    assert severities == {str(s) for s in Severity}  # burn-rate alerts label both per series
    routing = notification_routing(PAGER, TICKET)
    assert {r.matcher for r in routing.routes} == {("severity", "=", s) for s in severities}


def test_critical_mutes_the_warning_of_the_same_alert():
    (rule,) = alertmanager_config(notification_routing(PAGER, TICKET))["inhibit_rules"]
    assert rule == {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname"],
    }


@pytest.mark.parametrize("argument", ["pager_url", "ticket_url", "catch_all_url"])
def test_bad_urls_are_refused_without_echoing_them(argument):
    with pytest.raises(ValueError, match="must be empty or an http") as error:
        notification_routing(**{argument: "ftp://secret-t0ken@host/x"})
    assert "t0ken" not in str(error.value)
    assert "webhook_url" in str(error.value)
    assert "t0ken" not in repr(notification_routing(pager_url=PAGER.replace("t0k", "t0ken")))


def test_export_writes_the_alertmanager_config_from_its_flags(tmp_path, capsys):
    code = cli.main(
        [
            *("export", "--out", str(tmp_path), "--group-wait-seconds", "5"),
            *("--pager-webhook-url", PAGER, "--ticket-webhook-url", TICKET),
        ]
    )
    assert code == 0
    path = tmp_path / "alertmanager" / "alertmanager.yml"
    assert str(path) in capsys.readouterr().out.split()
    _amtool_check(path)
    document = yaml.safe_load(path.read_text())
    assert document["route"]["group_wait"] == "5s"
    assert {r["name"]: r.get("webhook_configs", [{}])[0].get("url") for r in document["receivers"]} == {
        CATCH_ALL_RECEIVER: None,
        PAGER_RECEIVER: PAGER,
        TICKET_RECEIVER: TICKET,
    }


def test_export_refuses_a_bad_webhook_in_one_line_with_exit_code_2(tmp_path, capsys):
    assert cli.main(["export", "--out", str(tmp_path), "--ticket-webhook-url", "mailto:t0ken"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "ticket_webhook_url" in err
    assert "t0ken" not in err
    assert not (tmp_path / "alertmanager").exists()
