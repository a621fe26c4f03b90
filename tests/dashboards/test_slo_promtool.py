"""The SLO burn-rate alerts under `promtool test rules`, against the SRE workbook's detection times.

Every case starts with six hours of healthy traffic, so each window up to 6h holds real history (the
workbook's figures assume a steady past). Expected firing times are worked out in the comments from the
workbook's arithmetic, not from the rules: with b the budget (1 - SLO), a tier fires once both its
windows' error ratios exceed factor x b.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards import alerts
from dashboards.settings import DEFAULT_SETTINGS, AlertSettings
from tests.dashboards.test_rules_promtool import (
    latency,
    requests,
    rule_paths,
    run_unit_tests,
    silent,
)

HISTORY = 360  # minutes of healthy traffic before each case
AVAILABILITY = alerts.ALERT_AVAILABILITY_BURN
LATENCY = alerts.ALERT_LATENCY_BURN
FAST = {0.1: 60}  # 60 /predict a minute, all under the 0.5 s bound
SLOW = {1.0: 60}  # 60 a minute, all over it


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return rule_paths(tmp_path_factory.mktemp("export"))


# What the alerts say, written out (not rebuilt from the rule's templates); {value} is the burn rate.
WINDOWS = (
    "critical: 14.4x over 1h and 5m or 6x over 6h and 30m; warning: 3x over 1d and 2h or 1x over 3d and 6h"
)
DESCRIPTIONS = {
    AVAILABILITY: "5xx answers of the model API burn the availability error budget (SLO 0.999, budget 0.001) "
    f"{{value}} times faster than it lasts 30 days ({WINDOWS}).",
    LATENCY: "/predict requests slower than 0.5s burn the latency error budget (SLO 0.99, budget 0.01) "
    f"{{value}} times faster than it lasts 30 days ({WINDOWS}).",
}
RUNBOOK_PANELS = {AVAILABILITY: 6, LATENCY: 7}


def at(minute: int, name: str, **burn: str) -> dict:
    """alert_rule_test entry: `name` fires at `minute` once per severity given, with that burn rate
    (rendered "%.1f"), e.g. at(365, AVAILABILITY, critical="83.3", warning="13.7")."""
    sli = "availability" if name == AVAILABILITY else "latency"
    return {
        "eval_time": f"{minute}m",
        "alertname": name,
        "exp_alerts": [
            {
                "exp_labels": {"severity": severity},
                "exp_annotations": {
                    "summary": f"The {sli} error budget burns too fast ({severity})",
                    "description": DESCRIPTIONS[name].replace("{value}", value),
                    "runbook_url": f"/d/model-monitoring-runbooks?viewPanel={RUNBOOK_PANELS[name]}",
                },
            }
            for severity, value in burn.items()
        ],
    }


def test_total_outage_pages_within_five_minutes(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    # 100% 5xx: the 1h ratio passes 14.4 x 0.001 = 1.44% after 0.0144 h = 52 s; the 5m ratio at once.
    # The ticket tiers hold too (3d and 6h ratios above 0.1% within a minute).
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {
                "input_series": [
                    requests("200", [(HISTORY, 60), (10, 0)]),
                    requests("500", [(HISTORY, 0), (10, 60)]),
                ],
                "alert_rule_test": [
                    *silent(AVAILABILITY, 60, HISTORY),
                    # 1h: 5 of 60 minutes failed = 8.33% (burn 83.3); 1d (365 minutes of data): 1.37% (13.7).
                    at(HISTORY + 5, AVAILABILITY, critical="83.3", warning="13.7"),
                ],
            }
        ],
    )


def test_one_percent_errors_page_after_hours_not_minutes(
    promtool: str, rules: list[Path], tmp_path: Path
) -> None:
    # 1% 5xx = burn 10: never 14.4; the 6h ratio reaches 6 x 0.001 = 0.6% after 0.6 x 6 h = 3.6 h, so the
    # page comes between 2 h and 4.5 h. The 3d/6h ticket tier (1x) holds from ~40 min: with six hours of
    # history the 3d ratio is t / (6 h + t) x 1% > 0.1% from t = 0.67 h.
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {
                "input_series": [
                    requests("200", [(HISTORY, 600), (270, 594)]),
                    requests("500", [(HISTORY, 0), (270, 6)]),
                ],
                "alert_rule_test": [
                    *silent(AVAILABILITY, HISTORY, HISTORY + 20),
                    # 1 h in: 3d ratio 360 / 252000 = 0.14% (burn 1.4); 2 h in: 720 / 288000 (2.5), no page.
                    at(HISTORY + 60, AVAILABILITY, warning="1.4"),
                    at(HISTORY + 120, AVAILABILITY, warning="2.5"),
                    # 3.3 h: the 6h ratio is 0.56%, no page; the 1d ratio 1200 / 336000 = 0.36% (3.6).
                    at(HISTORY + 200, AVAILABILITY, warning="3.6"),
                    # 3.8 h: 6h ratio 1380 / 216000 = 0.64% (6.4) pages; 1d 1380 / 354000 (3.9).
                    at(HISTORY + 230, AVAILABILITY, critical="6.4", warning="3.9"),
                    # 4.5 h: 6h 1620 / 216000 = 0.75% (7.5); 1d 1620 / 378000 (4.3).
                    at(HISTORY + 270, AVAILABILITY, critical="7.5", warning="4.3"),
                ],
            }
        ],
    )


def test_every_slow_request_pages_after_about_nine_minutes(
    promtool: str, rules: list[Path], tmp_path: Path
) -> None:
    # Latency SLO 99%: b = 1%; every /predict over the bound makes the 1h ratio t / 60 min, above 14.4%
    # after 8.64 min (the workbook's "about 9 minutes"). The 6h/30m page tier needs t / 360 > 6%: 21.6 min.
    # The 3d/6h ticket tier needs t / 360 > 1%: 3.6 min.
    run_unit_tests(
        promtool,
        rules,
        tmp_path,
        [
            {
                "input_series": latency([(HISTORY, FAST), (20, SLOW)]),
                "alert_rule_test": [
                    *silent(LATENCY, HISTORY, HISTORY + 3),
                    # The 3d ratio (all data) after 5 and 8 minutes: 5 / 365 = 1.37%, 8 / 368 = 2.17%.
                    at(HISTORY + 5, LATENCY, warning="1.4"),
                    at(HISTORY + 8, LATENCY, warning="2.2"),
                    # 10 min: 10 of the 1h window's 60 minutes slow = 16.7%; 3d 10 / 370 = 2.7%.
                    at(HISTORY + 10, LATENCY, critical="16.7", warning="2.7"),
                ],
            }
        ],
    )


def test_budget_friendly_traffic_never_fires_in_three_days(
    promtool: str, rules: list[Path], tmp_path: Path
) -> None:
    # 0.05% 5xx (burn 0.5) and 0.5% of /predict over the bound (burn 0.5): below every tier, always.
    # Sampled and evaluated every 5 minutes (the alerts have no `for`, so each evaluation stands alone, and
    # the shortest window, 5m, still spans two samples): three days in a few seconds.
    steps = 3 * 24 * 12
    slow_now_and_then = {0.1: 995, 1.0: 5}
    group = {
        "interval": "5m",
        "input_series": [
            requests("200", [(steps, 9995)]),
            requests("500", [(steps, 5)]),
            *latency([(steps, slow_now_and_then)]),
        ],
        "alert_rule_test": [
            *(s for name in (AVAILABILITY, LATENCY) for s in silent(name, *range(5, steps * 5 + 1, 60))),
            *(s for name in alerts.ALERT_NAMES for s in silent(name, steps * 5)),
        ],
    }
    run_unit_tests(promtool, rules, tmp_path, [group], evaluation_interval="5m")


def test_an_slo_of_zero_turns_it_off(promtool: str, tmp_path: Path) -> None:
    off = rule_paths(tmp_path / "export", AlertSettings(availability_slo=0))
    text = "".join(p.read_text() for p in off)
    assert AVAILABILITY not in text
    assert "availability_error_ratio" not in text
    assert LATENCY in text
    group = {
        "input_series": [requests("500", [(HISTORY + 10, 60)])],
        "alert_rule_test": silent(AVAILABILITY, HISTORY + 5),
    }
    run_unit_tests(promtool, off, tmp_path, [group])


def test_a_partial_outage_reports_its_burn_rate(promtool: str, rules: list[Path], tmp_path: Path) -> None:
    # 10 of 60 requests a minute fail for 10 minutes: the 1h window holds 100 errors among ~3600 requests
    # (2.78%, burn 27.8); the 1d window holds 370 minutes of data: 100 / 22200 = 0.45% (4.5).
    group = {
        "input_series": [
            requests("200", [(HISTORY, 60), (10, 50)]),
            requests("500", [(HISTORY, 0), (10, 10)]),
        ],
        "alert_rule_test": [at(HISTORY + 10, AVAILABILITY, critical="27.8", warning="4.5")],
    }
    run_unit_tests(promtool, rules, tmp_path, [group])


def test_divided_windows_keep_the_arithmetic(promtool: str, tmp_path: Path) -> None:
    """With slo_window_divisor 60 (the live test's setting) the 1h/5m tier becomes 1m/5s: an outage
    after a quiet six minutes pages within the first minute, the same arithmetic sixty times faster."""
    fast = rule_paths(tmp_path / "export", AlertSettings(slo_window_divisor=60))
    windows = (
        "critical: 14.4x over 1m and 5s or 6x over 6m and 30s; "
        "warning: 3x over 24m and 2m or 1x over 72m and 6m"
    )
    assert (
        "model:availability_error_ratio:rate5s"
        in (tmp_path / "export/prometheus/recording-rules.yml").read_text()
    )
    group = {
        "interval": "1s",
        "input_series": [
            requests("200", [(HISTORY, 1), (60, 0)]),
            requests("500", [(HISTORY, 0), (60, 1)]),
        ],
        "alert_rule_test": [
            {"eval_time": f"{HISTORY - 1}s", "alertname": AVAILABILITY, "exp_alerts": []},
            {
                "eval_time": f"{HISTORY + 5}s",
                "alertname": AVAILABILITY,
                "exp_alerts": [
                    {
                        "exp_labels": {"severity": severity},
                        "exp_annotations": {
                            "summary": f"The availability error budget burns too fast ({severity})",
                            "description": DESCRIPTIONS[AVAILABILITY]
                            .replace("{value}", value)
                            .replace(WINDOWS, windows),
                            "runbook_url": "/d/model-monitoring-runbooks?viewPanel=6",
                        },
                    }
                    # The same figures as the hour-scale outage: 5 of 60 (83.3), 5 of 365 (13.7).
                    for severity, value in (("critical", "83.3"), ("warning", "13.7"))
                ],
            },
        ],
    }
    run_unit_tests(promtool, fast, tmp_path, [group], evaluation_interval="1s")


def test_defaults_are_the_workbook_values() -> None:
    assert (DEFAULT_SETTINGS.availability_slo, DEFAULT_SETTINGS.latency_slo) == (0.999, 0.99)
    assert alerts.PAGE_TIERS == ((14.4, 3600, 300), (6.0, 21600, 1800))
    assert alerts.TICKET_TIERS == ((3.0, 86400, 7200), (1.0, 259200, 21600))
