"""pbxctl against a real PostgreSQL: every command, bad input for each field, import and export."""

from __future__ import annotations

import io
import json
import subprocess

import psycopg2
import pytest

from kemi import db
from kemi.admin.cli import build_parser, main
from kemi.admin.entities import ENTITIES
from kemi.admin.fields import ha1
from kemi.config import ROOT, Config

CO = "Kuban Realty"


@pytest.fixture
def dsn(stack, tmp_path_factory):
    """A fresh, migrated, empty database of its own (the proxy's demo data is untouched)."""
    name = "pbxctl_" + tmp_path_factory.mktemp("db").name.replace("-", "_").lower()
    admin = psycopg2.connect(stack.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    target = stack.dsn.replace("dbname=pbx", f"dbname={name}")
    db.migrate(target)
    yield target
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def ctl(dsn, capsys):
    """ctl("district", "add", ...): run pbxctl in-process; its exit code, stdout and stderr."""
    def run(*argv, stdin="", use_json=False):
        out = io.StringIO()
        args = list(argv) + ["--dsn", dsn] + (["--json"] if use_json else [])
        try:
            code = main(args, out=out, stdin=io.StringIO(stdin))
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code
        err = capsys.readouterr().err
        return Result(code, out.getvalue(), err)
    return run


def setup_company(ctl) -> None:
    """The README's walk-through: the demo company from an empty database, pbxctl alone."""
    steps = [
        ("trunk", "add", "--name", "kuban-telecom", "--carrier", "Kuban Telecom",
         "--sources", "127.0.0.2", "--egress-host", "127.0.0.2", "--is-default", "yes"),
        ("company", "add", "--name", CO),
        ("district", "add", "--company", CO, "--name", "Sochi",
         "--caller-id", "8 (862) 255-01-01", "--trunk", "kuban-telecom"),
        ("manager", "add", "--company", CO, "--district", "Sochi", "--name", "Ivan", "--position", "1"),
        ("manager", "add", "--company", CO, "--district", "Sochi", "--name", "Boris", "--position", "2"),
    ]
    for step in steps:
        result = ctl(*step)
        assert result.code == 0, (step, result.err)
    for sim, manager in (("89181110003", "Ivan"), ("+7 918 111-00-04", "Boris")):
        result = ctl("sim", "add", "--username", sim, "--company", CO, "--manager", manager,
                     "--password-stdin", stdin="demo-password\n")
        assert result.code == 0, result.err


def test_a_company_set_up_with_pbxctl_alone_routes(ctl):
    assert "(none)" in ctl("migrate").out  # the fixture migrated already: nothing to do
    setup_company(ctl)
    explained = json.loads(ctl("explain", "--from", "89891234567", "--to", "88622550101",
                               use_json=True).out)
    assert explained["decision"] == "ring SIMs in order"
    assert [h.split()[0] for h in explained["hunt"]] == ["+79181110003", "+79181110004"]
    assert explained["display_name"] == "Sochi"
    out = json.loads(ctl("explain", "--from", "x", "--to", "89891234567", "--sim", "89181110004",
                         use_json=True).out)
    assert out["caller_id_shown"] == "+78622550101"
    assert out["trunks"] == ["kuban-telecom: sip:+79891234567@127.0.0.2:5060"]


def test_explain_says_when_and_why_a_sticky_manager_rings_first(ctl, dsn):
    """Sticky manager (README): Boris called the client out and the client answered."""
    from datetime import datetime, timedelta, timezone
    from harness.records import record, ship
    setup_company(ctl)
    boris = json.loads(ctl("manager", "list", use_json=True).out)[1]
    assert boris["name"] == "Boris"
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM company")
        company_id = cur.fetchone()[0]
        at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
        ship(cur, [record(call_key="k;1", started_at=at, answered_at=at + timedelta(seconds=4),
                          ended_at=at + timedelta(seconds=60), duration_s=56,
                          direction="outbound", outcome="answered", sip_status=200,
                          company_id=company_id, manager_id=boris["id"], client="+79891234567")])
    conn.close()

    def explained():
        return json.loads(ctl("explain", "--from", "89891234567", "--to", "88622550101",
                              use_json=True).out)

    said = explained()
    assert [h.split()[0] for h in said["hunt"]] == ["+79181110004", "+79181110003"]
    when = (at + timedelta(seconds=4)).strftime("%Y-%m-%d %H:%M UTC")
    assert said["sticky"] == (
        f"yes: +79181110004 of Boris (manager {boris['id']}) ring first: the client's last "
        f"answered call was with this manager (last answered call with Boris (manager "
        f"{boris['id']}) on {when}, window 30 days)")
    assert ctl("district", "update", "Sochi", "--company", CO, "--sticky-days", "1").code == 0
    said = explained()
    assert said["sticky"].startswith("yes:")
    assert ctl("manager", "update", str(boris["id"]), "--active", "no").code == 0
    said = explained()
    assert said["sticky"].startswith("no: the manager of the last answered call is inactive (")
    assert [h.split()[0] for h in said["hunt"]] == ["+79181110003"]
    assert ctl("company", "update", CO, "--sticky", "no").code == 0
    assert explained()["sticky"] == "no: sticky routing is off for this district"
    other = json.loads(ctl("explain", "--from", "89890000000", "--to", "88622550101",
                           use_json=True).out)
    assert other["sticky"] == "no: sticky routing is off for this district"
    assert ctl("company", "update", CO, "--sticky", "yes").code == 0
    other = json.loads(ctl("explain", "--from", "89890000000", "--to", "88622550101",
                           use_json=True).out)
    assert other["sticky"] == ("no: no answered call of this client with a manager of the "
                               "company on record")


def test_list_show_update_remove(ctl):
    setup_company(ctl)
    assert "Sochi" in ctl("district", "list").out
    shown = json.loads(ctl("sim", "show", "8 918 111-00-03", use_json=True).out)
    assert shown == [{"username": "+79181110003", "company": CO, "manager": "Ivan",
                      "manager_id": shown[0]["manager_id"], "district": "Sochi", "active": True}]
    assert ctl("sim", "update", "+79181110003", "--active", "no").code == 0
    assert json.loads(ctl("sim", "show", "+79181110003", use_json=True).out)[0]["active"] is False
    assert ctl("company", "update", CO, "--allow-international", "yes").code == 0
    assert ctl("company", "update", CO, "--rename", "Kuban Realty Group").code == 0
    assert ctl("company", "show", "Kuban Realty Group").code == 0
    assert ctl("sim", "remove", "+79181110003").code == 0
    gone = ctl("sim", "show", "+79181110003")
    assert gone.code == 1 and "not found" in gone.err


def test_manager_override_and_move(ctl):
    setup_company(ctl)
    ctl("did", "add", "--number", "+78622550102", "--company", CO, "--district", "Sochi",
        "--trunk", "kuban-telecom")
    manager_id = json.loads(ctl("manager", "list", use_json=True).out)[0]["id"]
    assert ctl("manager", "update", str(manager_id), "--caller-id", "8 862 255 01 02").code == 0
    row = json.loads(ctl("manager", "show", str(manager_id), use_json=True).out)[0]
    assert row["shows"] == "+78622550102"
    assert ctl("manager", "update", str(manager_id), "--clear-caller-id").code == 0
    assert json.loads(ctl("manager", "show", str(manager_id), use_json=True).out)[0]["shows"] == "+78622550101"


@pytest.mark.parametrize("argv, message", [
    (("did", "add", "--number", "8 862 255", "--company", CO, "--district", "Sochi",
      "--trunk", "kuban-telecom"), "number: '8 862 255' is not a number of any assigned range"),
    (("did", "add", "--number", "hello", "--company", CO, "--district", "Sochi",
      "--trunk", "kuban-telecom"), "number: 'hello' is not a phone number"),
    (("did", "add", "--number", "+78622550109", "--company", "Nobody", "--district", "Sochi",
      "--trunk", "kuban-telecom"), "company: 'Nobody' does not exist"),
    (("did", "add", "--number", "+78622550109", "--company", CO, "--district", "Atlantis",
      "--trunk", "kuban-telecom"), "district: 'Atlantis' does not exist in company 'Kuban Realty'"),
    (("did", "add", "--number", "+78622550109", "--company", CO, "--district", "Sochi",
      "--trunk", "nope"), "trunk: 'nope' does not exist"),
    (("did", "add", "--number", "+78622550109", "--company", CO, "--district", "Sochi"),
     "trunk: '' is required"),
    (("company", "update", CO, "--allow-international", "maybe"), "allow_international: 'maybe' is not yes/no"),
    (("company", "update", CO, "--mask-numbers", "maybe"), "mask_numbers: 'maybe' is not yes/no"),
    (("company", "add", "--name", "X", "--mask-numbers", "company"),
     "mask_numbers: 'company' is not yes/no"),
    (("district", "update", "Sochi", "--company", CO, "--mask-numbers", "maybe"),
     "mask_numbers: 'maybe' is not yes, no or company"),
    (("district", "add", "--company", CO, "--name", "Anapa", "--caller-id", "+78613350101",
      "--mask-numbers", "2"), "mask_numbers: '2' is not yes, no or company"),
    (("company", "update", CO, "--sticky", "company"), "sticky: 'company' is not yes/no"),
    (("company", "update", CO, "--sticky-days", "0"), "sticky_days: '0' is not within 1..365"),
    (("company", "update", CO, "--sticky-days", "a month"),
     "sticky_days: 'a month' is not a whole number"),
    (("district", "update", "Sochi", "--company", CO, "--sticky", "often"),
     "sticky: 'often' is not yes, no or company"),
    (("district", "update", "Sochi", "--company", CO, "--sticky-days", "366"),
     "sticky_days: '366' is not within 1..365, nor company (as the company)"),
    (("trunk", "add", "--name", "t", "--carrier", "c", "--sources", "300.1.1.1",
      "--egress-host", "127.0.0.9"), "sources: '300.1.1.1' is not a list of addresses"),
    (("trunk", "add", "--name", "t", "--carrier", "c", "--sources", "127.0.0.9",
      "--egress-host", "pbx.example"), "egress_host: 'pbx.example' is not an IP address"),
    (("trunk", "add", "--name", "t", "--carrier", "c", "--sources", "127.0.0.9",
      "--egress-host", "127.0.0.9", "--egress-port", "70000"), "egress_port: '70000' is not within 1..65535"),
    (("trunk", "add", "--name", "t", "--carrier", "c", "--sources", "127.0.0.9",
      "--egress-host", "127.0.0.9", "--transport", "sctp"), "transport: 'sctp' is not one of udp, tcp, tls"),
    (("trunk", "add", "--name", "t", "--carrier", "c", "--sources", "127.0.0.9",
      "--egress-host", "127.0.0.9", "--number-format", "8xxx"), "number_format: '8xxx' is not one of"),
    (("trunk", "add", "--name", "", "--carrier", "c", "--sources", "127.0.0.9",
      "--egress-host", "127.0.0.9"), "name: '' is required"),
    (("manager", "add", "--company", CO, "--district", "Sochi", "--name", "X", "--position", "0"),
     "position: '0' is not within 1..10000"),
    (("manager", "add", "--company", CO, "--district", "Sochi", "--name", "X",
      "--caller-id", "+78612100101"), 'violates foreign key constraint "manager_caller_id_is_company_did"'),
    (("district", "add", "--company", CO, "--name", "Sochi-2", "--caller-id", "+78622550101"),
     'violates unique constraint "district_caller_id_unique_active"'),
    (("sim", "add", "--username", "+79181110009", "--company", CO, "--manager", "Nobody",
      "--password-stdin"), "manager: 'Nobody' does not exist"),
    (("sim", "add", "--username", "+79181110009", "--company", CO, "--manager", "Ivan",
      "--password-stdin"), "password: '(hidden)' is shorter than 8 characters"),
    (("trunk", "remove", "kuban-telecom"), "cannot remove trunk 'kuban-telecom'"),
    (("district", "remove", "Sochi", "--company", CO), "cannot remove district 'Sochi'"),
    (("company", "update", "Nobody", "--allow-kazakhstan", "yes"), "company 'Nobody' not found"),
    (("audit", "--since", "yesterday"), "since: 'yesterday' is neither an ISO time"),
])
def test_bad_input_is_refused_with_field_value_and_reason(ctl, argv, message):
    setup_company(ctl)
    result = ctl(*argv, stdin="short\n")
    assert result.code == 1
    assert message in result.err, result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("argv", [("sim", "add", "--username", "+79181110009", "--password", "x"),
                                  ("company", "frobnicate"), ("did",)])
def test_usage_errors_exit_2_and_passwords_never_come_from_argv(ctl, argv):
    assert ctl(*argv).code == 2


def test_an_unreachable_database_is_named(capsys):
    code = main(["company", "list", "--dsn", "host=/nonexistent port=1 dbname=x user=postgres"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot connect to 'host=/nonexistent port=1" in err and "Traceback" not in err


def test_the_shell_wrapper_runs_the_same_tool(dsn):
    done = subprocess.run([str(ROOT / "pbxctl"), "company", "list", "--dsn", dsn, "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and json.loads(done.stdout) == []


# -- import and export -------------------------------------------------------------------

def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n")
    return path


def did_rows(n, bad_at=None, bad="8 862 000"):
    return [[bad if i == bad_at else f"8 862 25{i:05d}", CO, "Sochi", "kuban-telecom", "bulk"]
            for i in range(n)]


def count_dids(ctl):
    return len(json.loads(ctl("did", "list", use_json=True).out))


def test_import_is_all_or_nothing_and_names_the_bad_row(ctl, tmp_path):
    setup_company(ctl)
    header = ["number", "company", "district", "trunk", "label"]
    before = count_dids(ctl)
    bad = ctl("did", "import", str(write_csv(tmp_path / "bad.csv", header, did_rows(500, bad_at=250))))
    assert bad.code == 1 and "row 252, column number: '8 862 000'" in bad.err
    assert count_dids(ctl) == before
    # A row refused by the database itself (a duplicate within the file), not by validation.
    rows = did_rows(500)
    rows[300] = rows[10]
    dup = ctl("did", "import", str(write_csv(tmp_path / "dup.csv", header, rows)))
    assert dup.code == 1 and "row 302:" in dup.err and "did_pkey" in dup.err
    assert count_dids(ctl) == before
    dry = ctl("did", "import", str(write_csv(tmp_path / "ok.csv", header, did_rows(500))), "--dry-run")
    assert dry.code == 0 and count_dids(ctl) == before
    assert ctl("did", "import", str(tmp_path / "ok.csv")).code == 0
    assert count_dids(ctl) == before + 500


def test_import_refuses_unknown_columns_and_missing_files(ctl, tmp_path):
    setup_company(ctl)
    odd = ctl("did", "import", str(write_csv(tmp_path / "odd.csv", ["number", "colour"], [["1", "2"]])))
    assert odd.code == 1 and "unknown column(s) colour" in odd.err
    missing = ctl("did", "import", str(tmp_path / "missing.csv"))
    assert missing.code == 1 and "No such file" in missing.err


def test_sims_import_with_passwords_or_ha1_and_export_round_trips(ctl, tmp_path, dsn):
    setup_company(ctl)
    sims = write_csv(tmp_path / "sims.csv", ["username", "company", "manager", "password", "ha1"],
                     [["89181110011", CO, "Ivan", "long-enough-1", ""],
                      ["89181110012", CO, "Boris", "", "0123456789abcdef0123456789abcdef"]])
    assert ctl("sim", "import", str(sims)).code == 0
    exported = ctl("sim", "export")
    assert exported.code == 0
    assert exported.out.splitlines()[0] == "username,company,manager,active"
    assert "+79181110012,Kuban Realty,Boris,true" in exported.out
    assert "ha1" not in exported.out and "long-enough" not in exported.out
    dids = tmp_path / "dids.csv"
    assert ctl("did", "export", str(dids)).code == 0
    assert ctl("did", "remove", "+78622550101").code == 1  # the district's caller ID: in use
    assert ctl("did", "import", str(dids), "--dry-run").code == 1  # already there: duplicates


def test_audit_shows_who_changed_what(ctl):
    setup_company(ctl)
    ctl("sim", "update", "+79181110003", "--active", "no")
    rows = json.loads(ctl("audit", "--table", "sim", "--since", "1h", use_json=True).out)
    assert rows[0]["operation"] == "UPDATE" and rows[0]["application"] == "pbxctl"
    assert rows[0]["old_row"]["active"] is True and rows[0]["new_row"]["active"] is False
    assert rows[0]["new_row"]["ha1"] == "(secret)"


# -- every update option does what it says (issue 11.3: none is accepted and ignored) ----

COMMON_OPTIONS = {"--help", "--dsn", "--json", "--region"}


def update_options(entity: str) -> set[str]:
    parser = build_parser()
    table = parser._subparsers._group_actions[0].choices[entity]
    update = table._subparsers._group_actions[0].choices["update"]
    return {o for a in update._actions for o in a.option_strings if o.startswith("--")} - COMMON_OPTIONS


def shown(ctl, entity, key, *scope):
    rows = json.loads(ctl(entity, "show", key, *scope, use_json=True).out)
    assert len(rows) == 1, rows
    return rows[0]


def secret_of(dsn, sql):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


SIM, MANAGER_ID = "+79181110003", "1"
# (entity, key, update arguments, stdin, the options it covers, what to read back)
UPDATES = [
    ("company", CO, ["--allow-international", "yes"], "", {"--allow-international"},
     lambda c, d: shown(c, "company", CO)["allow_international"] is True),
    ("company", CO, ["--allow-premium-rate", "yes"], "", {"--allow-premium-rate"},
     lambda c, d: shown(c, "company", CO)["allow_premium_rate"] is True),
    ("company", CO, ["--allow-kazakhstan", "yes"], "", {"--allow-kazakhstan"},
     lambda c, d: shown(c, "company", CO)["allow_kazakhstan"] is True),
    ("company", CO, ["--mask-numbers", "yes"], "", {"--mask-numbers"},
     lambda c, d: shown(c, "company", CO)["mask_numbers"] is True
     and shown(c, "district", "Sochi", "--company", CO)["masked"] is True),
    ("company", CO, ["--sticky", "no"], "", {"--sticky"},
     lambda c, d: shown(c, "company", CO)["sticky"] is False
     and shown(c, "district", "Sochi", "--company", CO)["sticky_window"] == "off"),
    ("company", CO, ["--sticky-days", "45"], "", {"--sticky-days"},
     lambda c, d: shown(c, "company", CO)["sticky_days"] == 45
     and shown(c, "district", "Sochi", "--company", CO)["sticky_window"] == "45 days"),
    ("company", CO, ["--name", "Kuban Homes"], "", {"--name"},
     lambda c, d: shown(c, "company", "Kuban Homes")["name"] == "Kuban Homes"),
    ("company", CO, ["--rename", "Kuban Homes"], "", {"--rename"},
     lambda c, d: shown(c, "company", "Kuban Homes")["name"] == "Kuban Homes"),
    ("trunk", "kuban-telecom", ["--carrier", "KT"], "", {"--carrier"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["carrier"] == "KT"),
    ("trunk", "kuban-telecom", ["--sources", "127.0.0.2,10.1.0.0/16"], "", {"--sources"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["sources"] == "127.0.0.2/32,10.1.0.0/16"),
    ("trunk", "kuban-telecom", ["--egress-host", "127.0.0.9"], "", {"--egress-host"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["egress_host"] == "127.0.0.9"),
    ("trunk", "kuban-telecom", ["--egress-port", "5080"], "", {"--egress-port"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["egress_port"] == 5080),
    ("trunk", "kuban-telecom", ["--transport", "tcp"], "", {"--transport"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["transport"] == "tcp"),
    ("trunk", "kuban-telecom", ["--number-format", "national"], "", {"--number-format"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["number_format"] == "national"),
    ("trunk", "kuban-telecom", ["--auth-username", "us", "--auth-password-stdin"], "pw-12345\n",
     {"--auth-username", "--auth-password-stdin"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["auth_username"] == "us"
     and secret_of(d, "SELECT auth_password FROM trunk WHERE name = 'kuban-telecom'") == "pw-12345"),
    ("trunk", "kuban-telecom", ["--accepts-foreign-caller-id", "yes"], "",
     {"--accepts-foreign-caller-id"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["accepts_foreign_caller_id"] is True),
    ("trunk", "kuban-telecom", ["--is-default", "no"], "", {"--is-default"},
     lambda c, d: shown(c, "trunk", "kuban-telecom")["is_default"] is False),
    ("trunk", "kuban-telecom", ["--name", "kt"], "", {"--name", "--rename"},
     lambda c, d: shown(c, "trunk", "kt")["name"] == "kt"),
    ("district", "Sochi", ["--company", CO, "--caller-id", "+78622550102"], "",
     {"--company", "--caller-id"},
     lambda c, d: shown(c, "district", "Sochi", "--company", CO)["caller_id"] == "+78622550102"),
    ("district", "Sochi", ["--company", CO, "--caller-id", "8 862 255-01-09",
                           "--trunk", "kuban-telecom"], "", {"--trunk"},
     lambda c, d: shown(c, "district", "Sochi", "--company", CO)["caller_id"] == "+78622550109"
     and shown(c, "did", "+78622550109")["district"] == "Sochi"),
    ("district", "Sochi", ["--company", CO, "--active", "no"], "", {"--active"},
     lambda c, d: shown(c, "district", "Sochi", "--company", CO)["active"] is False),
    ("district", "Sochi", ["--company", CO, "--mask-numbers", "yes"], "", {"--mask-numbers"},
     lambda c, d: shown(c, "district", "Sochi", "--company", CO)["mask_numbers"] is True
     and shown(c, "district", "Sochi", "--company", CO)["masked"] is True
     and shown(c, "company", CO)["mask_numbers"] is False),
    ("district", "Sochi", ["--company", CO, "--sticky", "no"], "", {"--sticky"},
     lambda c, d: shown(c, "district", "Sochi", "--company", CO)["sticky"] is False
     and shown(c, "district", "Sochi", "--company", CO)["sticky_window"] == "off"
     and shown(c, "company", CO)["sticky"] is True),
    ("district", "Sochi", ["--company", CO, "--sticky-days", "7"], "", {"--sticky-days"},
     lambda c, d: shown(c, "district", "Sochi", "--company", CO)["sticky_days"] == 7
     and shown(c, "district", "Sochi", "--company", CO)["sticky_window"] == "7 days"),
    ("district", "Anapa", ["--company", CO, "--sticky", "company", "--sticky-days", "company"],
     "", {"--sticky", "--sticky-days"},
     lambda c, d: shown(c, "district", "Anapa", "--company", CO)["sticky"] is None
     and shown(c, "district", "Anapa", "--company", CO)["sticky_days"] is None
     and shown(c, "district", "Anapa", "--company", CO)["sticky_window"] == "30 days"),
    # `company` stores NULL: Anapa (added with --mask-numbers no) follows its company again
    ("district", "Anapa", ["--company", CO, "--mask-numbers", "company"], "", {"--mask-numbers"},
     lambda c, d: shown(c, "district", "Anapa", "--company", CO)["mask_numbers"] is None),
    ("district", "Sochi", ["--company", CO, "--name", "Sochi-Center"], "", {"--name", "--rename"},
     lambda c, d: shown(c, "district", "Sochi-Center", "--company", CO)["name"] == "Sochi-Center"),
    ("did", "+78622550102", ["--company", CO, "--district", "Anapa"], "", {"--company", "--district"},
     lambda c, d: shown(c, "did", "+78622550102")["district"] == "Anapa"),
    ("did", "+78622550102", ["--trunk", "south"], "", {"--trunk"},
     lambda c, d: shown(c, "did", "+78622550102")["trunk"] == "south"),
    ("did", "+78622550102", ["--label", "billboard"], "", {"--label"},
     lambda c, d: shown(c, "did", "+78622550102")["label"] == "billboard"),
    ("manager", MANAGER_ID, ["--company", CO, "--district", "Anapa"], "", {"--company", "--district"},
     lambda c, d: shown(c, "manager", MANAGER_ID)["district"] == "Anapa"),
    ("manager", MANAGER_ID, ["--position", "7"], "", {"--position"},
     lambda c, d: shown(c, "manager", MANAGER_ID)["position"] == 7),
    ("manager", MANAGER_ID, ["--caller-id", "+78622550102"], "", {"--caller-id"},
     lambda c, d: shown(c, "manager", MANAGER_ID)["shows"] == "+78622550102"),
    ("manager", MANAGER_ID, ["--clear-caller-id"], "", {"--clear-caller-id"},
     lambda c, d: shown(c, "manager", MANAGER_ID)["caller_id"] is None),
    ("manager", MANAGER_ID, ["--active", "no"], "", {"--active"},
     lambda c, d: shown(c, "manager", MANAGER_ID)["active"] is False),
    ("manager", MANAGER_ID, ["--name", "Elena"], "", {"--name"},
     lambda c, d: shown(c, "manager", MANAGER_ID)["name"] == "Elena"),
    ("manager", MANAGER_ID, ["--rename", "Elena"], "", {"--rename"},
     lambda c, d: shown(c, "manager", MANAGER_ID)["name"] == "Elena"),
    ("sim", SIM, ["--company", CO, "--manager", "Boris"], "", {"--company", "--manager"},
     lambda c, d: shown(c, "sim", SIM)["manager"] == "Boris"),
    ("sim", SIM, ["--active", "no"], "", {"--active"},
     lambda c, d: shown(c, "sim", SIM)["active"] is False),
    ("sim", SIM, ["--set-password"], "new-password-1\n", {"--set-password"},
     lambda c, d: secret_of(d, f"SELECT ha1 FROM sim WHERE username = '{SIM}'")
     == ha1(SIM, Config().realm, "new-password-1")),
    ("sim", SIM, ["--password-stdin"], "new-password-2\n", {"--password-stdin"},
     lambda c, d: secret_of(d, f"SELECT ha1 FROM sim WHERE username = '{SIM}'")
     == ha1(SIM, Config().realm, "new-password-2")),
]


def test_every_update_option_has_a_case_below():
    for entity in ENTITIES:
        covered = set().union(*(u[4] for u in UPDATES if u[0] == entity))
        assert update_options(entity) == covered, entity


@pytest.mark.parametrize("entity, key, argv, stdin, covers, check", UPDATES,
                         ids=[f"{u[0]} {' '.join(sorted(u[4]))}" for u in UPDATES])
def test_each_update_option_changes_what_it_names(ctl, dsn, entity, key, argv, stdin, covers, check):
    setup_company(ctl)
    for step in (("district", "add", "--company", CO, "--name", "Anapa", "--caller-id",
                  "+78613350101", "--trunk", "kuban-telecom", "--mask-numbers", "no",
                  "--sticky", "no", "--sticky-days", "5"),
                 ("trunk", "add", "--name", "south", "--carrier", "South", "--sources",
                  "127.0.0.4", "--egress-host", "127.0.0.4"),
                 ("did", "add", "--number", "+78622550102", "--company", CO, "--district",
                  "Sochi", "--trunk", "kuban-telecom")):
        assert ctl(*step).code == 0, step
    if "--clear-caller-id" in covers:
        assert ctl("manager", "update", MANAGER_ID, "--caller-id", "+78622550102").code == 0
    result = ctl(entity, "update", key, *argv, stdin=stdin)
    assert result.code == 0, result.err
    assert check(ctl, dsn)


@pytest.mark.parametrize("argv, message", [
    (("did", "update", "+78622550101", "--company", CO),
     "company: 'Kuban Realty' is used only to find --district or --manager"),
    (("district", "update", "Sochi", "--company", CO, "--trunk", "kuban-telecom"),
     "trunk: 'kuban-telecom' is used only with --caller-id"),
])
def test_an_update_option_that_would_do_nothing_is_refused(ctl, argv, message):
    setup_company(ctl)
    result = ctl(*argv)
    assert result.code == 1 and message in result.err, result.err


# -- removing (issue 11.2: a district and its caller-ID DID point at each other) ----------

def test_a_whole_company_is_removed_with_pbxctl_alone(ctl):
    setup_company(ctl)
    assert ctl("did", "add", "--number", "+78622550102", "--company", CO, "--district", "Sochi",
               "--trunk", "kuban-telecom").code == 0
    refused = ctl("district", "remove", "Sochi", "--company", CO)
    assert refused.code == 1
    for blocker in ("manager 1 (Ivan)", "manager 2 (Boris)", "DID +78622550102"):
        assert blocker in refused.err, refused.err
    assert "remove or move those first" in refused.err
    for sim in ("+79181110003", "+79181110004"):
        assert ctl("sim", "remove", sim).code == 0
    for manager in json.loads(ctl("manager", "list", use_json=True).out):
        assert ctl("manager", "remove", str(manager["id"])).code == 0
    assert ctl("did", "remove", "+78622550102").code == 0
    removed = ctl("district", "remove", "Sochi", "--company", CO, use_json=True)
    assert removed.code == 0, removed.err
    assert json.loads(removed.out) == [
        {"removed": "district", "name": "Sochi"},
        {"removed": "did", "number": "+78622550101", "why": "the district's caller ID"}]
    assert ctl("company", "remove", CO).code == 0
    assert ctl("trunk", "remove", "kuban-telecom").code == 0
    for table in ENTITIES:
        assert json.loads(ctl(table, "list", use_json=True).out) == [], table


def test_a_district_whose_caller_id_another_manager_shows_is_not_removed(ctl):
    setup_company(ctl)
    assert ctl("district", "add", "--company", CO, "--name", "Anapa", "--caller-id",
               "+78613350101", "--trunk", "kuban-telecom").code == 0
    assert ctl("manager", "add", "--company", CO, "--district", "Anapa", "--name", "Anna",
               "--caller-id", "+78622550101").code == 0
    for sim in ("+79181110003", "+79181110004"):
        ctl("sim", "remove", sim)
    ctl("manager", "remove", "1")
    ctl("manager", "remove", "2")
    refused = ctl("district", "remove", "Sochi", "--company", CO)
    assert refused.code == 1 and "caller ID of manager 3 (Anna)" in refused.err, refused.err
    assert shown(ctl, "did", "+78622550101")["district"] == "Sochi"  # nothing removed
