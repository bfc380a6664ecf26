"""The database refuses rows that would break routing, naming the constraint and the row."""

from __future__ import annotations

import psycopg2
import pytest

from kemi import db


@pytest.fixture
def sql(stack):
    """Run raw SQL as a DBA would, inside a transaction rolled back after the test."""
    conn = psycopg2.connect(stack.dsn)

    def run(statement: str, *, commit_check: bool = False) -> None:
        with conn.cursor() as cur:
            cur.execute("SAVEPOINT statement")
            try:
                cur.execute(statement)
                if commit_check:  # deferred constraints are checked at commit
                    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            except psycopg2.Error:
                cur.execute("ROLLBACK TO SAVEPOINT statement")
                raise

    yield run
    conn.rollback()
    conn.close()


def refused(sql, statement, constraint, **kw):
    with pytest.raises(psycopg2.Error) as err:
        sql(statement, **kw)
    assert constraint in str(err.value), str(err.value)
    return str(err.value)


KUBAN = "(SELECT id FROM company WHERE name = 'Kuban Realty')"
SOCHI = "(SELECT id FROM district WHERE name = 'Sochi')"
TRUNK = "(SELECT id FROM trunk WHERE name = 'kuban-telecom')"


@pytest.mark.parametrize("number", ["88622550199", "78622550199", "+0123456", "+7 862 255", "",
                                    "+7862255019912345678"])
def test_did_must_be_e164(sql, number):
    message = refused(sql, f"INSERT INTO did VALUES ('{number}', {KUBAN}, {SOCHI}, {TRUNK})",
                      "did_number_e164")
    assert "Failing row contains" in message  # the refused row is named


def test_district_caller_id_must_be_a_did_of_its_company(sql):
    sql("INSERT INTO company (name) VALUES ('Other Co')")
    # Kuban Realty's DID, not Other Co's (and not yet published by an active district)
    sql("UPDATE district SET active = false WHERE name = 'Sochi'")
    refused(sql, "INSERT INTO district (company_id, name, caller_id) VALUES "
                 "((SELECT id FROM company WHERE name = 'Other Co'), 'Yeysk', '+78622550101')",
            "district_caller_id_is_company_did", commit_check=True)


def test_two_active_districts_cannot_publish_the_same_number(sql):
    refused(sql, f"INSERT INTO district (company_id, name, caller_id) VALUES "
                 f"({KUBAN}, 'Sochi-2', '+78622550101')", "district_caller_id_unique_active")
    sql(f"INSERT INTO district (company_id, name, caller_id, active) VALUES "
        f"({KUBAN}, 'Sochi-old', '+78622550101', false)")  # an inactive one may keep it


def test_did_must_ring_a_district_of_its_own_company(sql):
    sql("INSERT INTO company (name) VALUES ('Other Co')")
    refused(sql, "INSERT INTO did VALUES ('+78622550199', "
                 f"(SELECT id FROM company WHERE name = 'Other Co'), {SOCHI}, {TRUNK})",
            "did_district_same_company")


def test_manager_caller_id_override_must_be_a_company_did(sql):
    refused(sql, "UPDATE manager SET caller_id = '+78622559999' WHERE name = 'Ivan'",
            "manager_caller_id_is_company_did")


def test_sim_stores_only_an_md5_ha1_and_an_e164_username(sql):
    refused(sql, "UPDATE sim SET ha1 = 'secret' WHERE username = '+79181110003'", "sim_ha1_md5_hex")
    refused(sql, "UPDATE sim SET username = '89181110003' WHERE username = '+79181110003'",
            "sim_username_e164")


def test_a_sim_belongs_to_an_existing_manager(sql):
    refused(sql, "INSERT INTO sim VALUES ('+79181119999', 999999, md5('x'))", "sim_manager_id_fkey")


def test_trunk_sources_must_be_networks(sql):
    refused(sql, "UPDATE trunk SET sources = '{not-an-address}'", "invalid input syntax for type cidr")
    refused(sql, "UPDATE trunk SET sources = '{}'", "trunk_sources_not_empty")


def test_a_district_in_use_cannot_be_deleted(sql):
    refused(sql, "DELETE FROM district WHERE name = 'Sochi'", "violates foreign key constraint")


def test_upgrading_a_database_with_data_keeps_the_data(stack):
    admin = psycopg2.connect(stack.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS upgrade_test")
        cur.execute("CREATE DATABASE upgrade_test")
    target = stack.dsn.replace("dbname=pbx", "dbname=upgrade_test")
    try:
        assert db.migrate(target, up_to=1) == ["001_routing_schema.sql"]
        conn = psycopg2.connect(target)
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO company (name) VALUES ('Old Co')")
        applied = db.migrate(target)
        assert applied == [p.name for _, p in db.migrations()][1:]
        with conn, conn.cursor() as cur:
            cur.execute("SELECT name, allow_international FROM company")
            assert cur.fetchall() == [("Old Co", False)]
            cur.execute("SELECT max(version) FROM schema_version")
            assert cur.fetchone()[0] == db.migrations()[-1][0]
        conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE upgrade_test WITH (FORCE)")
        admin.close()


def test_migrations_are_applied_once(stack):
    assert db.migrate(stack.dsn) == []  # the session already applied them all
    rows = db.Database(stack.dsn).query("company_count")
    assert rows[0]["n"] == 1  # and the data survived the re-run


def test_raw_sql_changes_are_audited_with_who_and_what(stack):
    conn = psycopg2.connect(stack.dsn, application_name="dba-console")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE manager SET position = position WHERE name = 'Ivan'")
            cur.execute("UPDATE sim SET ha1 = ha1 WHERE username = '+79181110003'")
            cur.execute("SELECT table_name, operation, db_user, application, old_row, new_row"
                        " FROM audit ORDER BY id DESC LIMIT 2")
            (sim_t, sim_op, _, _, sim_old, sim_new), (mgr_t, mgr_op, user, app, old, new) = cur.fetchall()
    finally:
        conn.close()
    assert (mgr_t, mgr_op, user, app) == ("manager", "UPDATE", "postgres", "dba-console")
    assert old["name"] == new["name"] == "Ivan"
    assert (sim_t, sim_op) == ("sim", "UPDATE")
    assert sim_old["ha1"] == sim_new["ha1"] == "(secret)"  # credentials never reach the audit


def test_committed_changes_are_notified(stack):
    listener = db.Database(stack.dsn, listen=True)
    assert listener.changed().everything  # a first connection: anything may have changed
    assert not listener.changed()
    conn = psycopg2.connect(stack.dsn)
    try:
        with conn, conn.cursor() as cur:  # one transaction, three tables
            cur.execute("SELECT id FROM district WHERE name IN ('Sochi', 'Anapa') ORDER BY name")
            anapa, sochi = (row[0] for row in cur.fetchall())
            cur.execute("SELECT id FROM trunk WHERE name = 'kuban-telecom'")
            kuban = cur.fetchone()[0]
            cur.execute("UPDATE district SET name = name WHERE name = 'Sochi'")
            cur.execute("UPDATE trunk SET carrier = carrier WHERE name = 'kuban-telecom'")
            # a manager moved: his old and new districts are named
            cur.execute("UPDATE manager SET district_id = %s WHERE name = 'Boris'", (anapa,))
            cur.execute("SELECT id FROM manager WHERE name = 'Boris'")
            boris = cur.fetchone()[0]
            cur.execute("UPDATE manager SET district_id = %s WHERE name = 'Boris'", (sochi,))
    finally:
        conn.close()
    import time
    deadline = time.monotonic() + 2
    while not (changed := listener.changed()):
        assert time.monotonic() < deadline, "no notification within 2 s"
        time.sleep(0.01)
    # each table names itself and the keys that changed (sql/migrations/004)
    assert changed.tables == {"district": {"district": {str(sochi)}},
                              "trunk": {"trunk": {str(kuban)}},
                              "manager": {"manager": {str(boris)},
                                          "district": {str(anapa), str(sochi)}}}
    listener.close()


def test_a_change_too_large_to_name_says_so(stack, dba):
    listener = db.Database(stack.dsn, listen=True)
    listener.changed()
    dba("INSERT INTO company (name) SELECT 'bulk ' || i FROM generate_series(1, 2000) i",
        "DELETE FROM company WHERE name LIKE 'bulk %'")
    import time
    deadline = time.monotonic() + 2
    while not (changed := listener.changed()):
        assert time.monotonic() < deadline, "no notification within 2 s"
        time.sleep(0.01)
    assert changed.tables == {"company": db.ALL}  # 2,000 keys do not fit 8,000 bytes
    listener.close()
