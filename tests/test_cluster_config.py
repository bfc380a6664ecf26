"""A cluster node's settings (README, A cluster of proxies): refused with the variable named,
rendered into kamailio.cfg's defines, accepted by Kamailio; the database URL its usrloc gets."""

from __future__ import annotations

import subprocess

import pytest

from kemi import db
from kemi.config import ROOT, Config, ConfigError
from kemi.stack import KAMAILIO, cluster_defines

NODE = {"PBX_SIP_ADDR": "10.0.0.11", "PBX_CLUSTER_PEERS": "10.0.0.12, 10.0.0.13"}


def test_a_node_names_its_peers_and_listens_for_them_on_the_cluster_port():
    config = Config.from_env(NODE)
    assert config.peers == ("10.0.0.12", "10.0.0.13")
    defines = cluster_defines(config)
    assert "DMQ_LISTEN=udp:10.0.0.11:5070" in defines
    assert 'DMQ_PEER_1="sip:10.0.0.12:5070"' in defines
    assert 'DMQ_PEER_2="sip:10.0.0.13:5070"' in defines
    assert 'CLUSTER_NETS="10.0.0.12/32,10.0.0.13/32"' in defines
    assert cluster_defines(Config()) == []  # one proxy: no dmq at all (make run)


def test_each_node_has_its_own_server_id():
    ids = {Config(sip_addr=f"10.0.0.{i}").server_id for i in range(1, 255)}
    assert len(ids) == 254 and 0 not in ids  # 0: a registration replicated from a peer


@pytest.mark.parametrize("environ, message", [
    ({**NODE, "PBX_CLUSTER_PEERS": "10.0.0.12,node-b"},
     "PBX_CLUSTER_PEERS='10.0.0.12,node-b': 'node-b' is not an IPv4 address"),
    ({**NODE, "PBX_CLUSTER_PEERS": "10.0.0.12,10.0.0.11"}, "names this node's own PBX_SIP_ADDR"),
    ({**NODE, "PBX_CLUSTER_PEERS": "10.0.0.12,10.0.0.12"}, "at most 8 distinct addresses"),
    ({**NODE, "PBX_CLUSTER_PORT": "5060"}, "PBX_CLUSTER_PORT=5060: must differ"),
    ({**NODE, "PBX_CLUSTER_PORT": "0"}, r"PBX_CLUSTER_PORT=0: must be within 1\.\.65535"),
    ({**NODE, "PBX_REGISTRATIONS": "memory"}, "PBX_REGISTRATIONS='memory': a cluster needs db"),
    ({"PBX_REGISTRATIONS": "disk"}, "PBX_REGISTRATIONS='disk': must be db or memory"),
    ({**NODE, "PBX_WIRING": "kemi"}, "PBX_WIRING='kemi': a cluster needs native"),
])
def test_a_bad_cluster_setting_is_refused_naming_it(environ, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_env(environ)


def test_kamailio_accepts_the_cfg_of_a_node_and_of_a_proxy_with_registrations_in_memory():
    config = Config.from_env({**NODE, "PBX_SIP_ADDR": "127.0.0.1", "PBX_CLUSTER_PEERS": "127.0.0.2"})
    url = db.kamailio_url(config.database_dsn)[0]
    for extra in (["-A", "WITH_DB_REGISTRATIONS", "-A", f'REGISTRATIONS_URL="{url}"',
                   *cluster_defines(config)], []):
        done = subprocess.run([KAMAILIO, "-c", "-f", str(ROOT / "kamailio.cfg"), *extra],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]


def test_the_usrloc_url_keeps_the_dsn_out_of_the_command_line():
    url, env = db.kamailio_url("host=db.example port=6432 dbname=routing user=pbx password=s3cret")
    assert url == "postgres://pbx@/routing" and "s3cret" not in url
    assert env == {"PGHOST": "db.example", "PGPORT": "6432", "PGUSER": "pbx", "PGPASSWORD": "s3cret"}
    with pytest.raises(db.DatabaseError, match="cannot use options"):
        db.kamailio_url("host=db.example dbname=pbx options='-c search_path=x'")
