"""pbxctl and masked client numbers (README, Masked client numbers): mask and unmask for
support staff, key rotation, explain with tokens; every use audited, never a key or a number."""

from __future__ import annotations

import getpass
import json
import re
import stat

import pytest

from kemi.masking import Keys

from .test_pbxctl import CO, ctl, dsn, setup_company  # noqa: F401 (fixtures)

CLIENT, TYPED = "+79891234567", "8 989 123-45-67"
FIRST_KEY = "1 00112233445566778899aabbccddeeff active\n"


@pytest.fixture
def keys_file(tmp_path, monkeypatch):
    """The proxy's key file, as PBX_MASK_KEYS_FILE names it in production."""
    path = tmp_path / "mask.keys"
    path.write_text(FIRST_KEY)
    path.chmod(0o600)
    monkeypatch.setenv("PBX_MASK_KEYS_FILE", str(path))
    monkeypatch.delenv("PBX_MASK_KEYS", raising=False)
    return path


def key_hexes(path) -> list[str]:
    return list(Keys.parse(path.read_text()).by_id.values())


def ok(result):
    assert result.code == 0, result.err
    return result.out.strip()


def masking_audit(ctl) -> list[dict]:
    return json.loads(ctl("audit", "--table", "masking", "--since", "1h", use_json=True).out)


def assert_no_secrets(text: str, keys_path, *hexes: str) -> None:
    """Neither a key (in any case) nor the client's number, in any output or audit row."""
    for key in (*key_hexes(keys_path), *hexes):
        assert key not in text.lower(), "a key was shown"
    assert "9891234567" not in text, "the client's number was shown"


def test_mask_then_unmask_round_trips_and_each_use_is_audited_without_the_number(ctl, keys_file):
    setup_company(ctl)
    token = ok(ctl("mask", "--company", CO, TYPED))
    assert re.fullmatch(r"\+281\d{15}", token), token
    assert ok(ctl("mask", "--company", CO, CLIENT)) == token  # the same client, the same token
    assert ok(ctl("unmask", "--company", CO, token)) == CLIENT
    # as pasted from a phone: without the plus, with the dialer's 00, spaced
    spaced = "00 " + " ".join(re.findall(r"\d{1,4}", token[1:]))
    assert ok(ctl("unmask", "--company", CO, spaced)) == CLIENT
    assert json.loads(ctl("unmask", "--company", CO, token, use_json=True).out) == {
        "company": CO, "number": CLIENT}
    rows = masking_audit(ctl)
    assert [r["operation"] for r in rows] == ["UNMASK"] * 3 + ["MASK"] * 2
    assert all(r["application"] == "pbxctl" and r["table_name"] == "masking" for r in rows)
    assert rows[-1]["new_row"] == {"company": CO, "token": token, "key_id": "1",
                                   "os_user": getpass.getuser()}
    assert rows[0]["new_row"]["decoded"] is True
    assert_no_secrets(json.dumps(rows), keys_file)
    assert "UNMASK" in ctl("audit", "--table", "masking").out  # the table form as well


def test_another_companys_token_is_refused_and_the_attempt_stays_on_record(ctl, keys_file):
    setup_company(ctl)
    ok(ctl("company", "add", "--name", "Anapa Homes"))
    theirs = ok(ctl("mask", "--company", "Anapa Homes", CLIENT))
    assert theirs != ok(ctl("mask", "--company", CO, CLIENT))
    refused = ctl("unmask", "--company", CO, theirs)
    assert refused.code == 1
    assert (f"does not decode for company {CO}: another company's, mistyped, or made with a "
            f"retired key") in refused.err
    assert CLIENT not in refused.err
    last = masking_audit(ctl)[0]
    assert last["operation"] == "UNMASK" and last["new_row"]["decoded"] is False
    assert last["new_row"]["token"] == theirs and last["new_row"]["company"] == CO


@pytest.mark.parametrize("argv, message", [
    (("mask", "--company", CO, "hello"), "number: 'hello' is not a phone number"),
    (("mask", "--company", CO, "8 989 123"), "number: '8 989 123' is not a number of any"),
    (("mask", "--company", "Nobody", CLIENT), "company: 'Nobody' does not exist"),
    (("unmask", "--company", CO, "89891234567"), "token: '89891234567' is not a token"),
    (("unmask", "--company", CO, "+28123"), "token: '+28123' is not a token"),
    (("key", "retire", "5"), "key: '5' is not listed in"),
    (("key", "retire", "1"), "key: '1' is the active key: rotate first"),
])
def test_bad_masking_input_is_refused_naming_field_and_value(ctl, keys_file, argv, message):
    setup_company(ctl)
    result = ctl(*argv)
    assert result.code == 1 and message in result.err, result.err
    assert "Traceback" not in result.err


def test_without_keys_mask_is_refused_and_key_commands_want_a_file(ctl, monkeypatch):
    monkeypatch.delenv("PBX_MASK_KEYS_FILE", raising=False)
    monkeypatch.delenv("PBX_MASK_KEYS", raising=False)
    setup_company(ctl)
    for argv in (("mask", "--company", CO, CLIENT), ("unmask", "--company", CO, "+2811234567890123")):
        refused = ctl(*argv)
        assert refused.code == 1 and "no masking keys: set PBX_MASK_KEYS_FILE" in refused.err, refused.err
    for action in (("list",), ("rotate",), ("retire", "1")):
        usage = ctl("key", *action)
        assert usage.code == 2 and "PBX_MASK_KEYS_FILE" in usage.err, usage.err
    assert ctl("key", "retire", "x", "--file", "/tmp/k").code == 2  # one digit


def test_rotate_keeps_old_tokens_decoding_until_the_key_is_retired(ctl, keys_file):
    setup_company(ctl)
    old = ok(ctl("mask", "--company", CO, CLIENT))
    first_key = key_hexes(keys_file)[0]
    rotated = ctl("key", "rotate")
    assert rotated.code == 0, rotated.err
    assert "key 0 is active" in rotated.out and "key 1 still decodes older tokens" in rotated.out
    assert "the proxy picks it up within a second" in rotated.out
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    listed = json.loads(ctl("key", "list", use_json=True).out)
    assert [(k["id"], k["active"]) for k in listed] == [("0", True), ("1", False)]
    new = ok(ctl("mask", "--company", CO, CLIENT))
    assert new.startswith("+280") and new != old
    assert ok(ctl("unmask", "--company", CO, old)) == CLIENT  # the grace period
    assert ok(ctl("unmask", "--company", CO, new)) == CLIENT
    retired = ctl("key", "retire", "1")
    assert retired.code == 0 and "tokens made with it no longer decode" in retired.out, retired.err
    assert "the proxy picks it up within a second" in retired.out
    assert [k["id"] for k in json.loads(ctl("key", "list", use_json=True).out)] == ["0"]
    refused = ctl("unmask", "--company", CO, old)
    assert refused.code == 1 and "made with a retired key" in refused.err
    assert ok(ctl("unmask", "--company", CO, new)) == CLIENT
    assert ctl("key", "retire", "0").code == 1  # the active one
    rows = masking_audit(ctl)
    operations = [r["operation"] for r in rows]
    assert "ROTATE" in operations and "RETIRE" in operations
    rotate = next(r for r in rows if r["operation"] == "ROTATE")["new_row"]
    assert rotate["active"] == "0" and rotate["ids"] == ["0", "1"] and rotate["file"] == str(keys_file)
    everything = json.dumps(rows) + "".join(
        ctl(*argv).out for argv in (("key", "list"), ("audit", "--since", "1h")))
    assert_no_secrets(everything + rotated.out + retired.out, keys_file, first_key)


def test_rotate_creates_a_missing_file_and_stops_at_ten_keys(ctl, tmp_path, monkeypatch):
    monkeypatch.delenv("PBX_MASK_KEYS_FILE", raising=False)
    path = tmp_path / "new.keys"
    assert ctl("key", "list", "--file", str(path)).code == 1  # lists no key
    for _ in range(10):
        assert ctl("key", "rotate", "--file", str(path)).code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = Keys.parse(path.read_text())
    assert sorted(keys.by_id) == list("0123456789") and keys.active == "9"
    assert all(len(key) == 32 for key in keys.by_id.values())  # AES-128
    full = ctl("key", "rotate", "--file", str(path))
    assert full.code == 1 and "lists keys 0-9 already: retire one first" in full.err
    assert ctl("key", "retire", "--file", str(path), "3").code == 0
    assert ctl("key", "rotate", "--file", str(path)).code == 0
    keys = Keys.parse(path.read_text())
    assert keys.active == "3" and len(keys.by_id) == 10
    shown = ctl("key", "list", "--file", str(path)).out
    assert "makes and decodes" in shown and "decodes only" in shown
    assert not any(key in shown for key in keys.by_id.values())
    assert path.read_text().startswith("# masking keys (pbxctl key)")
    assert [p.name for p in tmp_path.iterdir()] == ["new.keys"]  # no temporary file left


def test_rotate_keeps_comments_and_refuses_a_file_it_cannot_read(ctl, tmp_path):
    path = tmp_path / "k"
    path.write_text("# the proxy's keys\n" + FIRST_KEY.strip() + "  # since May\n")
    assert ctl("key", "rotate", "--file", str(path)).code == 0
    lines = path.read_text().splitlines()
    assert lines[:2] == ["# the proxy's keys", "1 00112233445566778899aabbccddeeff  # since May"]
    assert re.fullmatch(r"0 [0-9a-f]{32} active", lines[2])
    path.write_text("1 nothex active\n")
    bad = ctl("key", "rotate", "--file", str(path))
    assert bad.code == 1 and "key 1 must be 32, 48 or 64 hex digits" in bad.err
    assert path.read_text() == "1 nothex active\n"


# -- explain with tokens ---------------------------------------------------------------------

def explain(ctl, *argv) -> dict:
    result = ctl("explain", *argv, use_json=True)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_explain_decodes_a_sims_token_and_shows_a_masked_caller(ctl, keys_file):
    setup_company(ctl)
    token = ok(ctl("mask", "--company", CO, CLIENT))
    said = explain(ctl, "--from", "x", "--to", token, "--sim", "89181110004")
    assert said["token"] == f"decodes to {CLIENT}"
    assert said["decision"] == "call out" and said["called"] == CLIENT
    # dialled from the call history, without the plus
    assert explain(ctl, "--from", "x", "--to", token[1:], "--sim", "89181110004")["called"] == CLIENT
    ok(ctl("company", "add", "--name", "Anapa Homes"))
    theirs = ok(ctl("mask", "--company", "Anapa Homes", CLIENT))
    said = explain(ctl, "--from", "x", "--to", theirs, "--sim", "89181110004")
    assert said["token"] == "does not decode for this company (404 Number Dialed Incorrectly)"
    assert said["reply"] == "404 Number Dialed Incorrectly"
    explained = [r["new_row"] for r in masking_audit(ctl) if r["new_row"].get("via") == "explain"]
    assert [r["decoded"] for r in explained] == [False, True, True]
    assert explained[0]["sim"] == "+79181110004" and explained[0]["company"] == CO
    # inbound to a DID of a masked district: the managers see the token
    plain = explain(ctl, "--from", "89891234567", "--to", "88622550101")
    assert plain["caller_id_shown"] == CLIENT and "masked" not in plain
    ok(ctl("company", "update", CO, "--mask-numbers", "yes"))
    masked = explain(ctl, "--from", "89891234567", "--to", "88622550101")
    assert masked["caller_id_shown"] == token and masked["masked"] is True
    ok(ctl("district", "update", "Sochi", "--company", CO, "--mask-numbers", "no"))
    assert explain(ctl, "--from", "89891234567", "--to", "88622550101")["caller_id_shown"] == CLIENT
    text = ctl("explain", "--from", "89891234567", "--to", token, "--sim", "89181110004").out
    assert re.search(rf"token\s+decodes to \{CLIENT}", text), text


def test_explain_without_keys_says_a_token_cannot_decode(ctl, monkeypatch):
    monkeypatch.delenv("PBX_MASK_KEYS_FILE", raising=False)
    monkeypatch.delenv("PBX_MASK_KEYS", raising=False)
    setup_company(ctl)
    said = explain(ctl, "--from", "x", "--to", "+2811234567890123", "--sim", "89181110004")
    assert said["token"].startswith("does not decode: no masking keys (PBX_MASK_KEYS_FILE)")
    assert said["reply"] == "404 Number Dialed Incorrectly"
    switched = ctl("company", "update", CO, "--mask-numbers", "yes")
    assert switched.code == 0 and "no masking keys are configured here" in switched.err
    said = explain(ctl, "--from", "89891234567", "--to", "88622550101")
    assert said["caller_id_shown"] == "anonymous"
    assert said["masked"].startswith("yes, but no keys are configured here (PBX_MASK_KEYS_FILE)")


def test_the_setting_is_exported_and_imported(ctl, tmp_path):
    setup_company(ctl)
    ok(ctl("company", "update", CO, "--mask-numbers", "yes"))
    assert "Kuban Realty,false,false,false,true" in ctl("company", "export").out
    ok(ctl("did", "add", "--number", "+78622550102", "--company", CO, "--district", "Sochi",
           "--trunk", "kuban-telecom"))
    ok(ctl("did", "add", "--number", "+78622550103", "--company", CO, "--district", "Sochi",
           "--trunk", "kuban-telecom"))
    csv = tmp_path / "districts.csv"
    csv.write_text("company,name,caller_id,active,mask_numbers\n"
                   f"{CO},Anapa,+78622550102,true,no\n{CO},Gelendzhik,+78622550103,true,company\n")
    assert ctl("district", "import", str(csv)).code == 0
    rows = {r["name"]: (r["mask_numbers"], r["masked"])
            for r in json.loads(ctl("district", "list", use_json=True).out)}
    assert rows == {"Anapa": (False, False), "Gelendzhik": (None, True), "Sochi": (None, True)}
    exported = ctl("district", "export").out.splitlines()
    assert exported[0] == "company,name,caller_id,active,mask_numbers,trunk,sticky,sticky_days"
    assert f"{CO},Anapa,+78622550102,true,false,,," in exported
    assert f"{CO},Gelendzhik,+78622550103,true,,,," in exported  # empty: as the company


def test_rotate_through_a_symlink_replaces_its_target(ctl, tmp_path):
    target = tmp_path / "secrets" / "mask.keys"
    target.parent.mkdir()
    target.write_text(FIRST_KEY)
    link = tmp_path / "mask.keys"
    link.symlink_to(target)
    assert ctl("key", "rotate", "--file", str(link)).code == 0
    assert link.is_symlink() and sorted(Keys.parse(target.read_text()).by_id) == ["0", "1"]
