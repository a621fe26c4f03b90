"""`python -m dashboards export --out DIR [--datasource-uid UID] [--<threshold> VALUE ...]`."""

import argparse
import dataclasses
import sys

from dashboards.export import export
from dashboards.settings import DATASOURCE_UID, AlertSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    exp = commands.add_parser("export", help="write DIR/prometheus/*.yml and DIR/grafana/*.json")
    exp.add_argument("--out", required=True, help="output directory (created if missing)")
    exp.add_argument("--datasource-uid", default=DATASOURCE_UID, help="UID of the Prometheus data source")
    for field in dataclasses.fields(AlertSettings):
        exp.add_argument(
            "--" + field.name.replace("_", "-"),
            type=field.type,
            default=field.default,
            help=f"default {field.default}",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(AlertSettings)}
    try:
        settings = AlertSettings(**overrides)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in export(args.out, settings, args.datasource_uid):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
