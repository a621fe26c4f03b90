"""The bounded protocol's rate-limited log (its limits run on a real server in tests/reliability/)."""

import logging

from server import protocol


def test_one_line_per_reason_per_interval_then_a_count_of_the_rest(monkeypatch, caplog):
    now = [100.0]
    monkeypatch.setattr(protocol, "monotonic", lambda: now[0])
    log = protocol.RateLimitedLog(logging.getLogger("test.rejections"), interval=10.0)
    with caplog.at_level(logging.WARNING, logger="test.rejections"):
        for _ in range(50):
            log.warning("malformed", "Invalid HTTP request received.")
        log.warning("read_timeout", "Request not received within 10 s.")  # another reason: its own line
        now[0] += 9.9
        log.warning("malformed", "Invalid HTTP request received.")
        now[0] += 0.2
        log.warning("malformed", "Invalid HTTP request received.")
    assert caplog.messages == [
        "Invalid HTTP request received.",
        "Request not received within 10 s.",
        "Invalid HTTP request received. (50 more not logged in the last 10 s)",
    ]
