"""pbxctl import of 100,000 DIDs in one transaction (make bench): a figure, not pass/fail."""

from __future__ import annotations

import csv
import io

import psycopg2

from kemi.admin.cli import main

ROWS = 100_000


def test_import_100k_dids(benchmark, bench_dsn, tmp_path):
    def ctl(*argv):
        assert main([*argv, "--dsn", bench_dsn], out=io.StringIO()) == 0

    ctl("trunk", "add", "--name", "kuban-telecom", "--carrier", "Kuban Telecom",
        "--sources", "127.0.0.2", "--egress-host", "127.0.0.2")
    ctl("company", "add", "--name", "Kuban Realty")
    ctl("district", "add", "--company", "Kuban Realty", "--name", "Sochi",
        "--caller-id", "+78622550101", "--trunk", "kuban-telecom")
    path = tmp_path / "dids.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "company", "district", "trunk", "label"])
        for i in range(ROWS):  # typed the way people type: 8 (861) 2XX-XX-XX
            writer.writerow([f"8 (861) 2{i // 10000:02d}-{i // 100 % 100:02d}-{i % 100:02d}",
                             "Kuban Realty", "Sochi", "kuban-telecom", "bulk"])

    def clear():
        conn = psycopg2.connect(bench_dsn)
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM did WHERE label = 'bulk'")
        conn.close()

    benchmark.pedantic(lambda: ctl("did", "import", str(path)), setup=clear, rounds=3)
