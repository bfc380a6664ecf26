"""pbxctl records prune and pbxctl report: call records (sql/migrations/006) kept for a
while, then removed by whole months; the reports managers and their bosses read.

Days are those of one time zone: --tz, else the database's TimeZone. A window is --since
DAY to --until DAY, both included (until: to the end of that day), by default the last 30
days with today. The SQL is in sql/admin/report_*.sql and records_*.sql.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import ConfigError
from . import keys as keys_mod
from .fields import InputError

DEFAULT_DAYS = 30
WITHHELD = "masked"  # a masked client's number when no masking keys are configured here

# The columns of each report, in order (the SQL selects them, plus what masking needs).
REPORTS = {
    "calls": ("company", "district", "day", "inbound", "answered", "missed", "answer_rate",
              "median_answer_s", "outbound", "talk_min"),
    "numbers": ("did", "label", "company", "calls", "clients", "answered", "missed"),
    "managers": ("company", "manager_id", "manager", "answered", "sticky", "missed_first",
                 "outbound", "talk_min"),
    "missed": ("company", "client", "did", "district", "last_call", "calls"),
}
HELP = {
    "calls": "per district and day: inbound, answered, missed, answer rate, time to answer, "
             "outbound, talk minutes",
    "numbers": "per DID and label: inbound calls, unique clients, answered, missed",
    "managers": "per manager: answered, of them through stickiness, missed while first in "
                "line, outbound, talk minutes",
    "missed": "the call-back list: clients whose last call was missed and not returned",
}
CHARTED = ("calls", "numbers")


# -- typed options -------------------------------------------------------------------------

def day(text: str) -> date:
    """A day typed as YYYY-MM-DD (argparse names the option in its message)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)")


def zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time zone (an IANA name such "
                                         f"as Europe/Moscow or UTC)") from None
    return text


def add_commands(tables, common) -> None:
    """pbxctl records prune; pbxctl report calls|numbers|managers|missed."""
    records = tables.add_parser("records", parents=[common], help="call records: retention")
    actions = records.add_subparsers(dest="action", required=True, metavar="ACTION")
    prune = actions.add_parser("prune", parents=[common],
                               help="remove records started before a day (whole months dropped)")
    prune.add_argument("--before", type=day, required=True, metavar="YYYY-MM-DD",
                       help="records started before this day began are removed")
    prune.add_argument("--tz", type=zone, help="whose day (default: the database's TimeZone)")
    prune.set_defaults(usage=prune.error)
    report = tables.add_parser("report", parents=[common], help="reports over call records")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    for name, text in HELP.items():
        sub = kinds.add_parser(name, parents=[common], help=text, description=text)
        sub.add_argument("--since", type=day, metavar="YYYY-MM-DD",
                         help=f"first day (default: {DEFAULT_DAYS - 1} days before --until)")
        sub.add_argument("--until", type=day, metavar="YYYY-MM-DD",
                         help="last day, included to its end (default: today)")
        sub.add_argument("--company", help="only this company's records")
        sub.add_argument("--district", help="only this district's (with --company)")
        sub.add_argument("--tz", type=zone, help="whose days (default: the database's TimeZone)")
        sub.add_argument("--csv", action="store_true", help="CSV with a header row")
        if name in CHARTED:
            sub.add_argument("--chart", metavar="FILE.png",
                             help="also draw answered and missed calls into a PNG")
        if name == "missed":
            sub.add_argument("--reveal", action="store_true",
                             help="real numbers even where the company masks them (audited)")
        sub.set_defaults(usage=sub.error)


# -- running them ------------------------------------------------------------------------------

def run(args, admin, out, emit) -> None:
    if getattr(args, "csv", False) and args.json:
        args.usage("--json and --csv: give one")
    clock = admin.session.run("records_clock", {"tz": args.tz})[0]
    if args.table == "records":
        rows, note = prune(args, admin, clock)
        emit(rows, args.json, out)
        print(note, file=sys.stderr if args.json else out)
        return
    rows = report(args, admin, clock)
    if args.csv:
        write_csv(REPORTS[args.report], rows, out)
    else:
        emit(rows, args.json, out)


def prune(args, admin, clock: dict) -> tuple[list[dict], str]:
    if args.before > clock["today"]:
        args.usage(f"argument --before: '{args.before}' is in the future "
                   f"(today is {clock['today']} in {clock['tz']})")
    rows = admin.session.run("records_prune", {"before": args.before})
    admin.session.run("records_partitions")
    total = sum(r["records"] for r in rows)
    admin.session.run("audit_records", {"operation": "PRUNE", "new_row": _json(
        {"before": str(args.before), "tz": clock["tz"], "records": total,
         "partitions": {r["partition"]: r["action"] for r in rows}})})
    admin.session.commit()
    return rows, (f"removed {total} record(s) started before {args.before} 00:00 "
                  f"({clock['tz']})")


def report(args, admin, clock: dict) -> list[dict]:
    until = args.until or clock["today"]
    since = args.since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        args.usage(f"argument --since: '{since}' is after --until '{until}'")
    company_id = admin.company_id(args.company)
    district_id = None
    if args.district:
        if not args.company:
            raise InputError("company", "", "is required with --district (district names "
                                            "are unique within a company)")
        district_id = admin.resolve("district", args.district, company_id)
    rows = [{k: _plain(v) for k, v in row.items()} for row in admin.session.run(
        f"report_{args.report}", {"since": since, "until": until,
                                  "company_id": company_id, "district_id": district_id})]
    if args.report == "missed":
        _show_clients(admin, rows, args.reveal, {
            "report": "missed", "since": str(since), "until": str(until),
            "company": args.company, "district": args.district})
    rows = [{c: row[c] for c in REPORTS[args.report]} for row in rows]
    if getattr(args, "chart", None):
        from . import charts  # matplotlib: only when a chart is asked for
        what = " ".join(filter(None, (args.company, args.district)))
        charts.draw(args.report, rows, args.chart,
                    f"{what or 'all companies'}, {since} to {until} ({clock['tz']})")
        print(f"chart written to {args.chart}", file=sys.stderr)
    return rows


def _show_clients(admin, rows: list[dict], reveal: bool, facts: dict) -> None:
    """A client's number as the record's district shows it to managers: its token where the
    company masks (as pbxctl mask prints it), or withheld when no keys are configured here.
    --reveal shows every number, and is audited like pbxctl unmask (never a number)."""
    masked = [r for r in rows if r["masked"] and r["client"]]
    if reveal:
        keys_mod.audit(admin, "REVEAL", numbers=len(masked), **facts)
        admin.session.commit()
        return
    if not masked:
        return
    try:
        masker = keys_mod.masker()
    except ConfigError as exc:
        print(f"pbxctl: note: the masking keys are unusable ({exc}): masked clients are "
              f"shown as {WITHHELD!r}", file=sys.stderr)
        masker = None
    else:
        if masker is None:
            print(f"pbxctl: note: no masking keys are configured here (PBX_MASK_KEYS_FILE): "
                  f"masked clients are shown as {WITHHELD!r}", file=sys.stderr)
    for row in masked:
        row["client"] = masker.mask(row["client"], row["company_id"]) if masker else WITHHELD


def _plain(value):
    """numeric as a JSON number: a whole one as int, else float."""
    if isinstance(value, Decimal):
        return int(value) if value.as_tuple().exponent >= 0 else float(value)
    return value


def _json(facts: dict) -> str:
    return json.dumps(facts, sort_keys=True)


def write_csv(columns: tuple[str, ...], rows: list[dict], out) -> None:
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row[c]) for c in columns])


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)
