"""pbxctl: add, list, show, update, remove, import and export the routing tables; explain; audit;
mask, unmask and the masking keys; call records' retention and reports.

Exit codes: 0 done, 1 refused (validation, constraint, not found, database unreachable), 2 usage.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..config import Config, ConfigError
from ..db import (FOREIGN_KEY_VIOLATION, ConstraintViolation, DatabaseError,
                  DatabaseUnavailable, Session, migrate)
from . import explain as explain_mod
from . import keys as keys_mod
from . import records as records_mod
from .entities import ENTITIES, Entity
from .fields import Field, InputError, ha1, ha1_hex, parse

ACTIONS = ("add", "list", "show", "update", "remove", "import", "export")
METAVARS = {"inherit": "BOOL|COMPANY", "days_inherit": "DAYS|COMPANY"}


class Refused(Exception):
    """An expected refusal: printed as one line, exit code 1."""


class Admin:
    """One pbxctl command: typed values in, rows out, all in one transaction."""

    def __init__(self, session: Session, region: str, realm: str):
        self.session = session
        self.region = region
        self.realm = realm
        self._ids: dict[tuple, int] = {}

    # -- references by natural key, memoised (an import resolves each name once) -------

    def resolve(self, kind: str, name: str, company_id: int | None = None) -> int:
        memo = (kind, name, company_id)
        if memo in self._ids:
            return self._ids[memo]
        rows = self.session.run(f"resolve_{kind}", {kind: name, "company_id": company_id})
        if not rows:
            company = next((n for (k, n, _), i in self._ids.items()
                            if k == "company" and i == company_id), None)
            scope = f" in company {company!r}" if company else ""
            raise InputError(kind, name, f"does not exist{scope}")
        if kind == "manager" and len(rows) > 1 and str(rows[0]["id"]) != name:
            raise InputError(kind, name, "names several managers: give the id (pbxctl manager list)")
        self._ids[memo] = rows[0]["id"]
        return self._ids[memo]

    def company_id(self, name: str | None) -> int | None:
        return self.resolve("company", name) if name else None

    # -- rows --------------------------------------------------------------------------

    def params(self, entity: Entity, raw: dict[str, str | None], adding: bool) -> dict:
        """SQL parameters from typed values: parsed, references resolved, secrets hashed."""
        values: dict = {}
        for f in entity.fields:
            value = raw.get(f.name)
            if value in (None, ""):
                if adding and f.required:
                    raise InputError(f.name, value or "", "is required")
                values[f.name] = None
            elif f.kind in ("ref", "secret"):
                values[f.name] = value
            else:
                values[f.name] = parse(f, value, self.region)
        company_id = self.company_id(values.get("company"))
        values["company_id"] = company_id
        for ref in ("district", "trunk", "manager"):
            if values.get(ref) is not None and (entity.name != "district" or ref != "district"):
                values[f"{ref}_id"] = self.resolve(ref, values[ref], company_id)
            else:
                values.setdefault(f"{ref}_id", None)
        if entity.name == "sim":
            values["ha1"] = self._sim_ha1(values)
        return values

    def _sim_ha1(self, values: dict) -> str | None:
        if values.get("ha1"):
            return ha1_hex("ha1", values["ha1"])
        if values.get("password"):
            return ha1(values["username"], self.realm, values["password"])
        return None

    def add(self, entity: Entity, raw: dict):
        """Add one row; returns its key for showing it."""
        values = self.params(entity, raw, adding=True)
        if entity.name == "sim" and not values["ha1"]:
            raise InputError("password", "", "is required (prompt, --password-stdin, or a CSV column)")
        row = self.session.run(f"{entity.name}_add", values)[0]
        if entity.name == "district" and values.get("trunk_id"):
            self._district_did(values, row["id"])
        self.session.check_deferred()
        return row["id"] if entity.name == "manager" else values[entity.key]

    def _district_did(self, values: dict, district_id: int) -> None:
        """A new district's caller ID becomes a DID ringing it, unless it is a DID already."""
        if not self.session.run("did_list", {"key": values["caller_id"], "company_id": None}):
            self.session.run("did_add", {"number": values["caller_id"],
                                         "company_id": values["company_id"],
                                         "district_id": district_id,
                                         "trunk_id": values["trunk_id"], "label": None})

    def update(self, entity: Entity, key, raw: dict, extra: dict) -> dict:
        values = self.params(entity, raw, adding=False)
        values.update(extra)
        values["key"] = key
        rows = self.session.run(f"{entity.name}_update", values)
        if not rows:
            raise Refused(f"{entity.name} {key!r} not found")
        if entity.name == "district" and values.get("trunk_id"):
            if not values.get("caller_id"):
                raise InputError("trunk", raw["trunk"], "is used only with --caller-id "
                                 "(the trunk of a new caller-ID DID)")
            self._district_did(values, self.resolve("district", rows[0]["name"],
                                                    values["company_id"]))
        self.session.check_deferred()
        return rows[0]

    def remove(self, entity: Entity, key, company_id: int | None) -> list[dict]:
        """Remove one row; what was removed (a district takes its own caller-ID DID)."""
        removed = []
        if entity.name == "district":
            removed = self._remove_district_did(key, company_id)
        try:
            rows = self.session.run(f"{entity.name}_remove", {"key": key, "company_id": company_id})
        except ConstraintViolation as exc:
            if exc.pgcode == FOREIGN_KEY_VIOLATION:
                raise Refused(f"cannot remove {entity.name} {key!r}: {exc.detail or exc} "
                              f"(remove or move those rows first)") from None
            raise
        if not rows:
            raise Refused(f"{entity.name} {key!r} not found")
        return [{"removed": entity.name, entity.key: rows[0][entity.key if entity.name != "manager"
                                                              else "id"]}] + removed

    def _remove_district_did(self, name: str, company_id: int) -> list[dict]:
        """A district and its caller-ID DID point at each other, so the DID goes with the
        district; anything else that depends on either is named and the removal refused."""
        district_id = self.resolve("district", name, company_id)
        caller_id = self.session.run("district_list", {"key": name, "company_id": company_id})[0]["caller_id"]
        blockers = self.session.run("district_dependents",
                                    {"district_id": district_id, "caller_id": caller_id})
        if blockers:
            raise Refused(f"cannot remove district {name!r}: it still has "
                          + ", ".join(f"{b['kind']} {b['name']}" for b in blockers)
                          + " (remove or move those first)")
        rows = self.session.run("district_remove_own_did", {"key": name, "company_id": company_id})
        return [{"removed": "did", "number": r["number"], "why": "the district's caller ID"}
                for r in rows]

    def list(self, entity: Entity, company: str | None, key=None) -> list[dict]:
        return self.session.run(f"{entity.name}_list",
                                {"key": key, "company_id": self.company_id(company)})

    def import_rows(self, entity: Entity, rows: list[dict], progress) -> int:
        """All or nothing: every row is checked, then every row is added in this transaction."""
        errors, params = [], []
        for number, raw in enumerate(rows, start=2):  # line 1 is the header
            try:
                params.append(self.params(entity, raw, adding=True))
                if entity.name == "sim" and not params[-1]["ha1"]:
                    raise InputError("password", "", "is required (column ha1 or password)")
            except InputError as exc:
                errors.append(f"row {number}, column {exc.field}: {exc.value!r} {exc.why}")
        if errors:
            raise Refused(f"{len(errors)} row(s) refused, nothing imported:\n" + "\n".join(errors[:50])
                          + (f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""))
        try:
            self.session.run_each(f"{entity.name}_add", params, progress)
            self.session.check_deferred()
        except ConstraintViolation as exc:
            where = f"row {exc.row + 2}" if hasattr(exc, "row") else "at commit"
            raise Refused(f"{where}: {_violation_text(exc)}; nothing imported") from None
        return len(params)


def _violation_text(exc: ConstraintViolation) -> str:
    text = str(exc)
    if exc.detail:
        text += f" ({exc.detail})"
    return text


# -- output ----------------------------------------------------------------------------------

def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def table(rows: list[dict], out) -> None:
    if not rows:
        print("(none)", file=out)
        return
    columns = list(rows[0])
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip(), file=out)


def emit(rows, as_json: bool, out=sys.stdout) -> None:
    if as_json:
        json.dump(rows, out, default=_json_default, ensure_ascii=False, indent=2)
        print(file=out)
    else:
        table(rows if isinstance(rows, list) else [rows], out)


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# -- command line ------------------------------------------------------------------------------

def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", default=argparse.SUPPRESS,
                        help="database (default: PBX_DSN, or the private cluster of PBX_STATE_DIR)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    common.add_argument("--region", default=argparse.SUPPRESS,
                        help="region of numbers typed without country code (default PBX_REGION)")
    parser = argparse.ArgumentParser(prog="pbxctl", description=__doc__, parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    tables = parser.add_subparsers(dest="table", required=True, metavar="COMMAND")
    for entity in ENTITIES.values():
        sub = tables.add_parser(entity.name, help=f"manage {entity.name} rows", parents=[common])
        actions = sub.add_subparsers(dest="action", required=True, metavar="ACTION")
        for action in ACTIONS:
            a = actions.add_parser(action, parents=[common], help=f"{action} {entity.name} rows")
            if action in ("show", "update", "remove"):
                a.add_argument("key", help=f"the {entity.name}'s {entity.key}")
            if entity.scoped or entity.name in ("did", "sim"):
                if action in ("list", "export") or (entity.scoped and action in ("show", "update", "remove")
                                                    and entity.name != "manager"):
                    a.add_argument("--company", required=action in ("show", "update", "remove"))
            if action in ("add", "update"):
                for f in entity.fields:
                    if f.kind == "secret" or (action == "update" and f.name in ("company", "name")):
                        continue
                    if action == "update" and f.name == entity.key:
                        continue
                    a.add_argument(_option(f.name), dest=f.name, help=f.help,
                                   metavar=METAVARS.get(f.kind, f.kind.upper()))
                if action == "update" and entity.renamable:
                    # The same spelling for every table that has a name; --rename is its alias.
                    a.add_argument("--name", "--rename", dest="rename", metavar="NEW_NAME",
                                   help="a new name")
                if action == "update" and entity.name in ("manager", "sim", "did"):
                    a.add_argument("--company", help="the company (to resolve --district/--manager)")
                if action == "update" and entity.name == "manager":
                    a.add_argument("--clear-caller-id", action="store_true",
                                   help="drop the override: show the district number again")
                if entity.name == "sim":
                    a.add_argument("--password-stdin", action="store_true",
                                   help="read the password from stdin instead of a prompt"
                                        + (" (update: changes it)" if action == "update" else ""))
                    if action == "update":
                        a.add_argument("--set-password", action="store_true",
                                       help="change the password (prompt or --password-stdin)")
                if entity.name == "trunk":
                    a.add_argument("--auth-password-stdin", action="store_true",
                                   help="read the carrier password from stdin")
            if action == "import":
                a.add_argument("file", type=Path, help="CSV with a header row of column names: "
                               + ", ".join(f.name for f in entity.fields))
                a.add_argument("--dry-run", action="store_true", help="check everything, change nothing")
            if action == "export":
                a.add_argument("file", type=Path, nargs="?", help="CSV file (default: stdout)")
    explain = tables.add_parser("explain", parents=[common],
                                help="the routing decision the proxy would make right now")
    explain.add_argument("--from", dest="caller", required=True, help="calling number")
    explain.add_argument("--to", dest="called", required=True, help="called number")
    source = explain.add_mutually_exclusive_group()
    source.add_argument("--source", nargs=2, metavar=("trunk", "NAME"),
                        help="the call arrives on this trunk (default: the DID's own trunk)")
    source.add_argument("--sim", help="the call comes from this authenticated SIM")
    explain.add_argument("--ctl", help="Kamailio's ctl socket, for registrations "
                                       "(default: PBX_STATE_DIR/kamailio/kamailio_ctl)")
    tables.add_parser("migrate", parents=[common],
                      help="apply the schema migrations the database does not have yet")
    audit = tables.add_parser("audit", parents=[common], help="the change history")
    audit.add_argument("--since", default="1d",
                       help="ISO time, or an age like 30m, 12h, 7d (default 1d)")
    audit.add_argument("--table", dest="table_name", choices=sorted([*ENTITIES, "masking", "call_record"]),
                       help="masking: mask, unmask, key and report --reveal; "
                            "call_record: records prune")
    audit.add_argument("--limit", type=int, default=100)
    # Masked client numbers (README): support staff turn a number into its token and back,
    # each use audited; the keys themselves are never shown.
    mask = tables.add_parser("mask", parents=[common], help="the token a company's managers see for a number")
    mask.add_argument("--company", required=True)
    mask.add_argument("number", help="the client's number, as people type it")
    unmask = tables.add_parser("unmask", parents=[common], help="the number a company's token stands for")
    unmask.add_argument("--company", required=True)
    unmask.add_argument("token", help="+28..., as the manager's phone shows it")
    key = tables.add_parser("key", parents=[common], help="the masking keys (ids only, never a key)")
    key_actions = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("list", "the keys' ids, and which one makes tokens"),
                         ("rotate", "add a fresh key and make it the active one (the others "
                                    "still decode their tokens)"),
                         ("retire", "remove a key: its tokens no longer decode")):
        a = key_actions.add_parser(action, parents=[common], help=text)
        a.add_argument("--file", type=Path, help="the key file (default: PBX_MASK_KEYS_FILE)")
        if action == "retire":
            a.add_argument("key_id", metavar="ID", choices=list(keys_mod.KEY_IDS), help="its id")
    records_mod.add_commands(tables, common)
    return parser


def _since(text: str) -> datetime:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return datetime.now(timezone.utc) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError("since", text, "is neither an ISO time nor an age like 12h") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _secret(prompt: str, from_stdin: bool, stdin) -> str:
    if from_stdin or not stdin.isatty():
        line = stdin.readline().rstrip("\r\n")
        if not line:
            raise InputError("password", "", "is empty on stdin")
        return line
    first, second = getpass.getpass(prompt), getpass.getpass("again: ")
    if first != second:
        raise InputError("password", "(hidden)", "does not match its confirmation")
    return first


def run(args, admin: Admin, out, stdin) -> None:
    if args.table == "migrate":
        applied = migrate(admin.session.dsn)
        emit([{"migration": name, "applied": True} for name in applied] or
             [{"migration": "(none)", "applied": False}], args.json, out)
        return
    if args.table == "audit":
        rows = admin.session.run("audit_list", {"since": _since(args.since),
                                                "table": args.table_name, "limit": args.limit})
        emit(rows, args.json, out)
        return
    if args.table in ("mask", "unmask"):
        shown = (keys_mod.mask(admin, args.company, args.number) if args.table == "mask"
                 else keys_mod.unmask(admin, args.company, args.token))
        admin.session.commit()
        if args.json:
            emit({"company": args.company, "token" if args.table == "mask" else "number": shown},
                 True, out)
        else:
            print(shown, file=out)
        return
    if args.table == "key":
        if args.action == "list":
            emit(keys_mod.key_list(args.file), args.json, out)
            return
        rows, note = (keys_mod.key_rotate(admin, args.file) if args.action == "rotate"
                      else keys_mod.key_retire(admin, args.file, args.key_id))
        admin.session.commit()
        emit(rows, args.json, out)
        print(note, file=sys.stderr if args.json else out)
        return
    if args.table in ("records", "report"):
        records_mod.run(args, admin, out, emit)
        return
    if args.table == "explain":
        result = explain_mod.explain(admin, args)
        admin.session.commit()  # the audit of a token decoded
        if args.json:
            emit(result, True, out)
        else:
            width = max(map(len, result))
            for name, value in result.items():
                shown = "\n".ljust(width + 3).join(value) if isinstance(value, list) else _cell(value)
                print(f"{name.ljust(width)}  {shown}", file=out)
        return
    entity = ENTITIES[args.table]
    action = args.action
    raw = {f.name: getattr(args, f.name, None) for f in entity.fields}
    key = getattr(args, "key", None)
    if key is not None and entity.key_kind in ("number", "position"):
        key = parse(Field(entity.key, entity.key_kind), key, admin.region)
    if entity.name == "sim" and (action == "add" or getattr(args, "set_password", False)
                                 or (action == "update" and args.password_stdin)):
        raw["password"] = _secret(f"password for {raw.get('username') or key}: ",
                                  args.password_stdin, stdin)
    if entity.name == "trunk" and getattr(args, "auth_password_stdin", False):
        raw["auth_password"] = _secret("carrier password: ", True, stdin)
    if action == "add":
        shown = admin.add(entity, raw)
        admin.session.commit()
        _note_keys(raw)
        emit(admin.list(entity, raw.get("company") if entity.scoped else None, shown), args.json, out)
    elif action in ("list", "show"):
        rows = admin.list(entity, getattr(args, "company", None), key)
        if action == "show" and not rows:
            raise Refused(f"{entity.name} {key!r} not found")
        emit(rows, args.json, out)
    elif action == "update":
        extra = {"rename": getattr(args, "rename", None),
                 "clear_caller_id": getattr(args, "clear_caller_id", False)}
        if entity.scoped and entity.name != "manager":
            raw["company"] = args.company
        for ref in ("manager", "district"):
            if raw.get(ref) and not raw.get("company") and entity.name != "district":
                raise InputError("company", "", f"is required with --{ref}")
        if (entity.name in ("manager", "sim", "did") and getattr(args, "company", None)
                and not (raw.get("manager") or raw.get("district"))):
            raise InputError("company", args.company, "is used only to find --district or "
                             "--manager in it (a row cannot change company)")
        if entity.name == "sim" and raw.get("password"):
            raw["username"] = key
        admin.update(entity, key, raw, extra)
        admin.session.commit()
        _note_keys(raw)
        new_key = key if entity.name == "manager" else (extra["rename"] or key)
        emit(admin.list(entity, raw.get("company") if entity.scoped else None, new_key), args.json, out)
    elif action == "remove":
        company_id = admin.company_id(getattr(args, "company", None))
        rows = admin.remove(entity, key, company_id)
        admin.session.commit()
        emit(rows, args.json, out)
    elif action == "export":
        rows = admin.list(entity, getattr(args, "company", None))
        target = open(args.file, "w", newline="") if args.file else out
        writer = csv.DictWriter(target, fieldnames=list(entity.exported), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("true" if v is True else "false" if v is False else v)
                             for k, v in row.items()})
        if args.file:
            target.close()
            print(f"exported {len(rows)} {entity.name} row(s) to {args.file}", file=sys.stderr)
    elif action == "import":
        rows = _read_csv(args.file, entity)
        show = sys.stderr.isatty() and len(rows) >= 10000

        def progress(done: int) -> None:
            if show:
                bar = "#" * (30 * done // len(rows))
                print(f"\r{entity.name} [{bar:<30}] {done}/{len(rows)}", end="", file=sys.stderr)

        count = admin.import_rows(entity, rows, progress)
        if show:
            print(file=sys.stderr)
        if args.dry_run:
            admin.session.rollback()
            emit([{"table": entity.name, "rows": count, "imported": False, "dry_run": True}], args.json, out)
        else:
            admin.session.commit()
            emit([{"table": entity.name, "rows": count, "imported": True}], args.json, out)


def _note_keys(raw: dict) -> None:
    """Masking switched on: say so if the keys it needs are not where pbxctl looks (the
    change stands; the proxy refuses to start without keys while a company masks)."""
    if str(raw.get("mask_numbers") or "").strip().lower() not in ("yes", "true", "on", "1", "y"):
        return
    try:
        missing = keys_mod.masker() is None
    except ConfigError as exc:
        print(f"pbxctl: note: the masking keys are unusable: {exc}", file=sys.stderr)
        return
    if missing:
        print("pbxctl: note: no masking keys are configured here (PBX_MASK_KEYS_FILE); the "
              "proxy refuses to start without them while a company masks", file=sys.stderr)


def _read_csv(path: Path, entity: Entity) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            unknown = set(reader.fieldnames or ()) - {f.name for f in entity.fields}
            if unknown:
                raise Refused(f"{path}: unknown column(s) {', '.join(sorted(unknown))}; "
                              f"{entity.name} columns are {', '.join(f.name for f in entity.fields)}")
            return list(reader)
    except OSError as exc:
        raise Refused(f"{path}: {exc.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise Refused(f"{path}: not a readable CSV file ({exc})") from None


def main(argv: list[str] | None = None, out=None, stdin=None) -> int:
    out = out or sys.stdout
    stdin = stdin or sys.stdin
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    try:
        config = Config.from_env()
        if args.table == "key":
            args.file = args.file or (Path(config.mask_keys_file) if config.mask_keys_file else None)
            if args.file is None:
                parser.error("key: give --file F or set PBX_MASK_KEYS_FILE (the proxy's key file)")
        dsn = getattr(args, "dsn", None) or config.database_dsn
        region = getattr(args, "region", None) or config.region
        session = Session(dsn)
    except (ConfigError, DatabaseUnavailable) as exc:
        print(f"pbxctl: {exc}", file=sys.stderr)
        return 1
    try:
        run(args, Admin(session, region, config.realm), out, stdin)
        return 0
    except (InputError, Refused, ConfigError) as exc:
        session.rollback()
        print(f"pbxctl: {exc}", file=sys.stderr)
        return 1
    except ConstraintViolation as exc:
        session.rollback()
        print(f"pbxctl: refused by the database: {_violation_text(exc)}", file=sys.stderr)
        return 1
    except DatabaseError as exc:
        print(f"pbxctl: database error on {dsn!r}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head and friends
        return 0
    finally:
        session.close()
