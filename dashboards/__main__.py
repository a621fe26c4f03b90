"""`python -m dashboards export --out DIR [--datasource-uid UID] [--<threshold> VALUE ...]
[--pager-webhook-url URL] [--ticket-webhook-url URL] [--webhook-url URL]`."""

import argparse
import dataclasses
import sys

from dashboards.export import export
from dashboards.notifications import GROUP_WAIT_SECONDS, notification_routing
from dashboards.settings import DATASOURCE_UID, AlertSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    exp = commands.add_parser(
        "export", help="write DIR/prometheus/*.yml, DIR/grafana/*.json and DIR/alertmanager/alertmanager.yml"
    )
    exp.add_argument("--out", required=True, help="output directory (created if missing)")
    exp.add_argument("--datasource-uid", default=DATASOURCE_UID, help="UID of the Prometheus data source")
    for field in dataclasses.fields(AlertSettings):
        flag = "--" + field.name.replace("_", "-")
        if field.type is bool:  # --gateway / --no-gateway
            exp.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
            continue
        exp.add_argument(flag, type=field.type, default=field.default, help=f"default {field.default}")
    notify = exp.add_argument_group("notifications (alertmanager.yml)")
    notify.add_argument("--pager-webhook-url", default="", help="receives severity=critical (default: none)")
    notify.add_argument("--ticket-webhook-url", default="", help="receives severity=warning (default: none)")
    notify.add_argument(
        "--webhook-url", default="", help="catch-all: what no other route takes (default: none)"
    )
    notify.add_argument(
        "--group-wait-seconds",
        type=int,
        default=GROUP_WAIT_SECONDS,
        help=f"wait before a group's first notification, default {GROUP_WAIT_SECONDS}",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(AlertSettings)}
    try:
        settings = AlertSettings(**overrides)
        routing = notification_routing(
            args.pager_webhook_url,
            args.ticket_webhook_url,
            args.webhook_url,
            group_wait_seconds=args.group_wait_seconds,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in export(args.out, settings, args.datasource_uid, routing):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
