"""`odp disparities` and `odp officers`: the analytics of the public API at
ODP_URL, as a table for a terminal or as the API's CSV.

    odp disparities nc 78 --from 2015 --csv
    odp disparities nc statewide
    odp officers nc 78 --group hispanic --min-stops 200
"""

from __future__ import annotations

from odp.facts import public_get
from shared.states import DISPARITY_GROUPS, REFERENCE_GROUP, STATES

COMMANDS = ("disparities", "officers")


def add_analytics_commands(commands) -> None:
    for name, summary, example in (
            ("disparities", "search, hit and stop rates by group with 95%% intervals",
             "odp disparities nc 78 --from 2015 --csv"),
            ("officers", "an agency's officers ranked by search-rate disparity",
             "odp officers nc 78 --group black --min-stops 100")):
        command = commands.add_parser(
            name, help=f"print {summary} (from the public API at ODP_URL)",
            description=f"Print {summary}, from the public API at ODP_URL. Example: "
                        f"{example}")
        command.add_argument("state", choices=sorted(STATES))
        command.add_argument("agency", help="the agency's id" + (
            ", or statewide" if name == "disparities" else ""))
        command.add_argument("--from", dest="first", metavar="YYYY[-MM]",
                             help="first year or month (inclusive)")
        command.add_argument("--to", dest="last", metavar="YYYY[-MM]",
                             help="last year or month (inclusive)")
        command.add_argument("--csv", action="store_true", help="print the API's CSV")
        if name == "disparities":
            command.add_argument("--officer", help="one officer's stops")
        else:
            command.add_argument("--group", choices=[group for group in DISPARITY_GROUPS
                                                     if group != REFERENCE_GROUP],
                                 help="the group compared with white drivers (default black)")
            command.add_argument("--min-stops", type=int,
                                 help="officers with at least this many stops (default 100)")


def fetch(base_url: str, args):
    where = "statewide" if args.agency == "statewide" else f"agency/{args.agency}"
    params = {"from": args.first, "to": args.last,
              "officer": getattr(args, "officer", None), "group": getattr(args, "group", None),
              "min_stops": getattr(args, "min_stops", None),
              "format": "csv" if args.csv else None}
    return public_get(base_url, f"/{args.state}/api/{where}/{args.command}/",
                      {key: value for key, value in params.items() if value is not None})


def _interval(interval: dict | None, percent: bool = False) -> str:
    if interval is None:
        return "-"
    scale, unit = (100, "%") if percent else (1, "")
    value = f"{interval['value'] * scale:.1f}{unit}" if percent else f"{interval['value']:.2f}"
    if interval["low"] is None:
        return value
    low, high = interval["low"] * scale, interval["high"] * scale
    return f"{value} ({low:.1f}-{high:.1f}{unit})" if percent else \
        f"{value} ({low:.2f}-{high:.2f})"


def format_disparities(body: dict) -> str:
    lines = [f"Reference group: {body['reference']}; intervals at "
             f"{body['confidence']:.0%} confidence",
             f"{'group':<16}{'stops':>9}{'searches':>10}  {'search rate':<22}"
             f"{'search ratio':<20}{'hit rate':<22}{'stop ratio'}"]
    for group in body["groups"]:
        lines.append(f"{group['group']:<16}{group['stops']:>9,}{group['searches']:>10,}  "
                     f"{_interval(group['search_rate'], True):<22}"
                     f"{_interval(group['search_rate_ratio']):<20}"
                     f"{_interval(group['hit_rate'], True):<22}"
                     f"{_interval(group['stop_rate_ratio'])}")
    return "\n".join(lines)


def format_officers(body: dict) -> str:
    lines = [f"{body['group']} vs {body['reference']} drivers, officers with at least "
             f"{body['min_stops']:,} stops; agency search-rate ratio "
             f"{_interval(body['agency_search_rate_ratio'])}",
             f"{'officer':<16}{'stops':>8}{'ratio':>24}{'p':>12}{'q':>12}  flagged"]
    for officer in body["officers"]:
        lines.append(f"{officer['officer']:<16}{officer['stops']:>8,}"
                     f"{_interval(officer['search_rate_ratio']):>24}"
                     f"{officer['p_value']:>12.3g}{officer['q_value']:>12.3g}  "
                     f"{'yes' if officer['flagged'] else ''}")
    if not body["officers"]:
        lines.append("(no officer has that many stops)")
    return "\n".join(lines)


def run(args, config) -> int:
    import sys

    try:
        response = fetch(config.odp_url, args)
    except (RuntimeError, OSError) as error:
        print(f"error: {args.command}: {error}", file=sys.stderr)
        return 1
    if args.csv:
        sys.stdout.write(response.text)
    else:
        formatter = format_disparities if args.command == "disparities" else format_officers
        print(formatter(response.json()))
    return 0
