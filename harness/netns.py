"""Network namespaces the tests create themselves: nothing sent inside one leaves it.

`Netns.entered()` moves this process into the namespace (setns) for a `with` block, so that
sockets opened and processes started there belong to it; sockets opened before stay where
they were, and files (PostgreSQL's Unix socket, Kamailio's ctl socket) are shared."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import subprocess
import uuid

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class Netns:
    def __init__(self, prefix: str = "pbx"):
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def create(self) -> "Netns":
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.ip("link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)

    @contextlib.contextmanager
    def entered(self):
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield self
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)


class Capture:
    """Every UDP datagram on an interface of the namespace it was opened in (AF_PACKET),
    as (source, destination, payload); each counted once, as it left its sender, or with
    received=True as it arrived from the other end of the link (a veth's peer)."""

    PACKET_OUTGOING = 4

    def __init__(self, interface: str = "lo", received: bool = False):
        self.received = received
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        # Loopback frames are charged at their 64 KiB buffers: the default queue holds a few
        # dozen, and the kernel silently drops the rest (SO_RCVBUFFORCE: root only).
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        self.sock.bind((interface, 0))
        self.sock.setblocking(False)

    def datagrams(self) -> list[tuple[tuple[str, int], tuple[str, int], bytes]]:
        found = []
        while True:
            try:
                frame, address = self.sock.recvfrom(65535)
            except BlockingIOError:
                return found
            if (address[2] == self.PACKET_OUTGOING) == self.received or len(frame) < 42:
                continue
            ip = frame[14:]
            if ip[0] >> 4 != 4 or ip[9] != 17:  # IPv4, UDP
                continue
            header = (ip[0] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", ip[header:header + 4])
            found.append(((socket.inet_ntoa(ip[12:16]), sport),
                          (socket.inet_ntoa(ip[16:20]), dport), ip[header + 8:]))

    def close(self) -> None:
        self.sock.close()
