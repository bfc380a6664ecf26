"""A NAT lab in network namespaces: phones on mobile data behind a masquerading NAT, the
proxy between them and the carriers, every address from the documentation ranges.

    phone ns                nat ns                       proxy ns                 carrier ns
    198.51.100.2 (Ivan)  -- 198.51.100.1 | 203.0.113.1 -- 203.0.113.2 (SIM side)
    198.51.100.3 (Boris)    masquerade random             192.0.2.1 (carrier side) -- 192.0.2.2 kuban-telecom
                                                                                      192.0.2.3 south-link
                                                                                      192.0.2.4 west-line

The phones' only way out is the NAT (their default route); the proxy has no default route
at all, so it can reach a phone only through a live NAT binding, and nothing in the lab
can reach or leave for anything else. The NAT forwards only what answers a binding (as
a mobile carrier's does), with ports chosen at random (a binding that expired comes back
on another port), and its UDP binding lifetime can be set short to expire within a test.
"""

from __future__ import annotations

import subprocess

from .netns import Netns

SIM_A, SIM_B = "198.51.100.2", "198.51.100.3"
NAT_INSIDE, NAT_PUBLIC = "198.51.100.1", "203.0.113.1"
PROXY_SIM_SIDE, PROXY_CARRIER_SIDE = "203.0.113.2", "192.0.2.1"
KUBAN, SOUTH_LINK, WEST_LINE = "192.0.2.2", "192.0.2.3", "192.0.2.4"
# What one side must never learn of the other: the phones' own and NAT addresses, the
# proxy's SIM-side address, and the carriers'.
PHONE_SIDE = (SIM_A, SIM_B, NAT_INSIDE, NAT_PUBLIC, PROXY_SIM_SIDE)
CARRIER_SIDE = (KUBAN, SOUTH_LINK, WEST_LINE, PROXY_CARRIER_SIDE)

NAT_RULES = """
table ip lab {
  chain forward {
    type filter hook forward priority 0; policy drop;
    iifname "nat-in" accept
    ct state established,related accept
  }
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "nat-out" masquerade random
  }
}
"""


class NatLab:
    def __init__(self):
        self.phone, self.nat = Netns("pbxphone"), Netns("pbxnat")
        self.proxy, self.carrier = Netns("pbxproxy"), Netns("pbxcarrier")
        self.spaces = (self.phone, self.nat, self.proxy, self.carrier)

    def _link(self, a: Netns, a_name: str, b: Netns, b_name: str) -> None:
        a.ip("link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b.name)
        a.ip("link", "set", a_name, "up")
        b.ip("link", "set", b_name, "up")

    def create(self) -> "NatLab":
        for space in self.spaces:
            space.create()
        try:
            self._link(self.phone, "phone0", self.nat, "nat-in")
            self._link(self.nat, "nat-out", self.proxy, "sim0")
            self._link(self.proxy, "carrier0", self.carrier, "trunk0")
            for address in (SIM_A, SIM_B):
                self.phone.ip("addr", "add", f"{address}/24", "dev", "phone0")
            self.phone.ip("route", "add", "default", "via", NAT_INSIDE)
            self.nat.ip("addr", "add", f"{NAT_INSIDE}/24", "dev", "nat-in")
            self.nat.ip("addr", "add", f"{NAT_PUBLIC}/24", "dev", "nat-out")
            self.proxy.ip("addr", "add", f"{PROXY_SIM_SIDE}/24", "dev", "sim0")
            self.proxy.ip("addr", "add", f"{PROXY_CARRIER_SIDE}/24", "dev", "carrier0")
            for address in (KUBAN, SOUTH_LINK, WEST_LINE):
                self.carrier.ip("addr", "add", f"{address}/24", "dev", "trunk0")
            self.exec(self.nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            subprocess.run(["ip", "netns", "exec", self.nat.name, "nft", "-f", "-"],
                           input=NAT_RULES, text=True, check=True, capture_output=True)
        except BaseException:
            self.delete()
            raise
        return self

    def exec(self, space: Netns, *cmd: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", space.name, *cmd], check=True,
                              capture_output=True, text=True)
        return done.stdout

    def binding_lifetime(self, seconds: int) -> None:
        """How long the NAT keeps a UDP binding nobody uses (one way and both ways)."""
        for key in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
            self.exec(self.nat, "sysctl", "-qw", f"net.netfilter.{key}={seconds}")

    def delete(self) -> None:
        for space in self.spaces:
            space.delete()
