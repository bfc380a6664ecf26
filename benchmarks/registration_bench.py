"""What keeping registrations in PostgreSQL costs (README, A cluster of proxies): a proxy of its
own (demo data) with PBX_REGISTRATIONS=memory, then =db, in turns; a SIM re-registering at a
fixed rate (digest challenge included). Prints Kamailio's CPU per REGISTER (every process:
SIP workers and usrloc's write-back timer) and the rows usrloc wrote; asserts nothing.

    flock /tmp/pbx-e2e.lock /usr/bin/python3 -m benchmarks.registration_bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import psycopg2

from kemi.config import Config
from kemi.stack import Kamailio, PostgresCluster, free_port, prepare_database, with_children

from benchmarks.sip_bench import cpu_seconds
from harness.sipp import Sipp

PROXY_PORT = 15090
SIM, PASSWORD = "+79181110003", "demo-79181110003"


def written(dsn: str) -> int:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute("SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
                    " WHERE relname = 'location'")
        return cur.fetchone()[0]


def measure(work: Path, config: Config, dsn: str, rate: int, seconds: int) -> tuple[float, int]:
    """(Kamailio CPU ms per REGISTER, rows usrloc wrote) for one run."""
    proxy = Kamailio(config, work / "kamailio", log_path=work / f"{config.registrations}.log")
    proxy.start()
    try:
        calls = rate * seconds
        rows = written(dsn)
        cpu = cpu_seconds(with_children(proxy.pid))
        Sipp("register", "uac.xml", work, remote=f"127.0.0.1:{PROXY_PORT}", local_ip="127.0.0.1",
             local_port=5650, service=SIM, auth=(SIM, PASSWORD), calls=calls, rate=rate,
             keys={"realm": config.realm}, timeout_s=seconds + 20).run(seconds + 30)
        cpu = cpu_seconds(with_children(proxy.pid)) - cpu
        proxy.rpc("ul.rm", "location", "s:" + SIM)
        return 1000 * cpu / calls, written(dsn) - rows
    finally:
        proxy.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=200, help="REGISTERs per second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cloud-pbx-regbench-"))
    os.chmod(work, 0o755)
    cluster = PostgresCluster(work, free_port())
    base = replace(Config(), state_dir=str(work), sip_port=PROXY_PORT, pg_port=cluster.port,
                   tls_port=0, media="off", records="off", metrics_port=0, flood_reqs=0,
                   natping_s=0, keepalive_timeout_s=0, log_level=1, rpc_port=free_port())
    results: dict[str, list[tuple[float, int]]] = {"memory": [], "db": []}
    try:
        cluster.start()
        prepare_database(cluster.dsn, base.realm)
        for _ in range(args.rounds):
            for mode in results:
                results[mode].append(measure(work, replace(base, registrations=mode),
                                             cluster.dsn, args.rate, args.seconds))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    calls = args.rate * args.seconds
    for mode, runs in results.items():
        print(f"PBX_REGISTRATIONS={mode}: {statistics.median(r[0] for r in runs):.3f} ms Kamailio "
              f"CPU per REGISTER (rounds {', '.join(f'{r[0]:.3f}' for r in runs)}); "
              f"rows written per round {[r[1] for r in runs]} for {calls} REGISTERs "
              f"({args.rate}/s, one contact)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
