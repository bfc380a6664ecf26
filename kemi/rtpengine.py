"""rtpengine's ng control protocol (bencode over UDP), just enough to ask the media relay
whether it is up, which calls it holds and what it relayed. Kamailio's rtpengine module
does the offers and answers; this is for the launcher (kemi/stack.py), tests and benchmarks.
"""

from __future__ import annotations

import socket
import uuid


class NgError(RuntimeError):
    """rtpengine did not answer, or answered with an error."""


def bencode(value) -> bytes:
    if isinstance(value, dict):
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(value.items())) + b"e"
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    return b"%d:%s" % (len(value), value)


def bdecode(data: bytes):
    def parse(i: int):
        c = data[i:i + 1]
        if c == b"i":
            end = data.index(b"e", i)
            return int(data[i + 1:end]), end + 1
        if c in (b"l", b"d"):
            items, i = [], i + 1
            while data[i:i + 1] != b"e":
                item, i = parse(i)
                items.append(item)
            if c == b"l":
                return items, i + 1
            return dict(zip(items[::2], items[1::2])), i + 1
        colon = data.index(b":", i)
        length = int(data[i:colon])
        return data[colon + 1:colon + 1 + length].decode(errors="replace"), colon + 1 + length

    return parse(0)[0]


def ng(address: tuple[str, int], command: dict, timeout: float = 1.0) -> dict:
    """One ng command, its answer as a dict. rtpengine remembers answers by cookie (a
    retransmission gets the same answer): every command gets a fresh one."""
    cookie = uuid.uuid4().hex[:12].encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(cookie + b" " + bencode(command), address)
        try:
            while True:
                data = sock.recv(65535)
                if data.startswith(cookie + b" "):
                    break
        except OSError as exc:
            raise NgError(f"rtpengine at {address[0]}:{address[1]}: {exc}") from None
    answer = bdecode(data[len(cookie) + 1:])
    if answer.get("result") == "error":
        raise NgError(f"rtpengine: {answer.get('error-reason')}")
    return answer


def calls(address: tuple[str, int]) -> list[str]:
    """Call-IDs of the sessions rtpengine holds right now."""
    return ng(address, {"command": "list", "limit": 100000}).get("calls", [])
