"""The call record spool (kemi/records.py) on files alone: what is read, where it resumes,
what a rotation renames, gives back or removes. No Kamailio, no database."""

from __future__ import annotations

import os
import time

import pytest

from kemi import records
from kemi.records import Spool, control_socket, parse_attempt, parse_cdr

CDR = ("1796223345|1796223345|0.207000|1-11199@127.0.0.1;11199SIPpTag001|1796223345.244177|"
       "1796223345.270552||outbound|answered|||+78622550101\t+79891234567\tkuban-telecom\t"
       "+79181110003||0|\n")
ATTEMPT = ("INVITE|11649SIPpTag001||1-11649@127.0.0.1|404|Number Dialed Incorrectly|1796223446|"
           "1796223446.524886\trefused\toutbound\t+78622550101\t\t\t+79181110004\n")


def cdr(n: int) -> str:
    return CDR.replace("1-11199@", f"{n}-11199@")


@pytest.fixture
def spool(tmp_path):
    return tmp_path


def test_lines_parse_into_records():
    call = parse_cdr(CDR.rstrip("\n"))
    assert (call.call_key, call.direction, call.outcome, call.sip_status, call.did, call.client,
            call.trunk, call.sim, call.rang_before) == (
        "1-11199@127.0.0.1;11199SIPpTag001", "outbound", "answered", 200, "+78622550101",
        "+79891234567", "kuban-telecom", "+79181110003", 0)
    assert call.duration_s == 0.207 and call.answered_at <= call.ended_at
    refused = parse_attempt(ATTEMPT.rstrip("\n"))
    assert (refused.call_key, refused.outcome, refused.sip_status, refused.sip_reason,
            refused.sim, refused.client) == (
        "1-11649@127.0.0.1;11649SIPpTag001", "refused", 404, "Number Dialed Incorrectly",
        "+79181110004", None)


def test_only_complete_lines_are_read_and_the_rest_waits(spool):
    live = spool / "cdr_5.log"
    live.write_text(cdr(1) + cdr(2)[:40])  # a writer mid-line
    s = Spool(spool)
    found, advanced, bad = s.pending()
    assert [r.call_key.split("-")[0] for r in found] == ["1"] and not bad
    s.commit(advanced)
    with open(live, "a") as f:
        f.write(cdr(2)[40:])
    found, advanced, _ = Spool(spool).pending()  # a new process: offsets from offsets.json
    assert [r.call_key.split("-")[0] for r in found] == ["2"]


def test_a_bad_line_is_reported_and_skipped_not_holding_up_the_rest(spool):
    (spool / "attempt_5.log").write_text("garbage\n" + ATTEMPT)
    found, _, bad = Spool(spool).pending()
    assert len(found) == 1 and len(bad) == 1 and "garbage" in bad[0]


def test_a_renamed_file_keeps_its_place(spool):
    live = spool / "cdr_5.log"
    live.write_text(cdr(1))
    s = Spool(spool)
    s.commit(s.pending()[1])
    renamed = spool / "cdr_5.log.1796223345"
    live.rename(renamed)
    with open(renamed, "a") as f:  # written between the rename and Kamailio's reopening
        f.write(cdr(2))
    found, _, _ = s.pending()
    assert [r.call_key.split("-")[0] for r in found] == ["2"]


def test_a_full_shipped_file_is_renamed_and_kamailio_told(spool, monkeypatch):
    monkeypatch.setattr(records, "ROTATE_BYTES", len(CDR))
    live = spool / "cdr_5.log"
    live.write_text(cdr(1))
    s = Spool(spool)
    s.commit(s.pending()[1])
    asked = []

    def rotate() -> bool:  # Kamailio reopens the name at its next write
        asked.append(True)
        live.write_text(cdr(2))
        return True

    s.tidy(rotate)
    assert asked and sorted(p.name for p in spool.glob("cdr_5.log*")) == [
        "cdr_5.log", f"cdr_5.log.{int(time.time())}"]
    found, _, _ = s.pending()
    assert [r.call_key.split("-")[0] for r in found] == ["2"]


def test_a_rotation_kamailio_did_not_take_gives_the_file_its_name_back(spool, monkeypatch):
    monkeypatch.setattr(records, "ROTATE_BYTES", len(CDR))
    monkeypatch.setattr(records, "IDLE_S", 0.0)
    live = spool / "cdr_5.log"
    live.write_text(cdr(1))
    s = Spool(spool)
    s.commit(s.pending()[1])
    said = []
    s.tidy(lambda: False, said.append)
    assert [p.name for p in spool.glob("cdr_5.log*")] == ["cdr_5.log"], \
        "still the live file: Kamailio writes to it; were it renamed, it would be removed"
    assert said and "not rotated" in said[0]
    with open(live, "a") as f:
        f.write(cdr(2))
    s.tidy(lambda: False, said.append)  # not fully shipped: left alone
    assert [r.call_key.split("-")[0] for r in s.pending()[0]] == ["2"]


def test_a_renamed_file_is_removed_once_shipped_whole_and_idle(spool, monkeypatch):
    old = spool / "cdr_5.log.1796220000"
    old.write_text(cdr(1) + cdr(2))
    s = Spool(spool)
    found, advanced, _ = s.pending()
    s.tidy(lambda: True)
    assert old.exists(), "not shipped yet"
    s.commit(advanced)
    s.tidy(lambda: True)
    assert old.exists(), "shipped, but written to less than IDLE_S ago"
    os.utime(old, (time.time() - records.IDLE_S - 1,) * 2)
    s.tidy(lambda: True)
    assert not old.exists()
    assert s.offsets == {}  # its offset forgotten with it


def test_the_control_socket_is_in_kamailios_runtime_folder():
    assert control_socket(b"/usr/sbin/kamailio\0-f\0k.cfg\0-Y\0/tmp/run\0-DD\0") == \
        records.Path("/tmp/run/kamailio_ctl")
    assert control_socket(b"/usr/sbin/kamailio\0-f\0k.cfg\0") == \
        records.Path("/run/kamailio/kamailio_ctl")
