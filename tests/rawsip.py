"""One SIP request over a plain UDP socket, for forged and malformed messages SIPp cannot write."""

from __future__ import annotations

import socket
import uuid


def build(method: str, ruri: str, source: tuple[str, int], *, from_uri: str, to_uri: str,
          to_tag: str | None = None, headers: tuple[str, ...] = (), cseq: str | None = None) -> str:
    ip, port = source
    tag = uuid.uuid4().hex[:10]
    lines = [f"{method} {ruri} SIP/2.0",
             f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
             "Max-Forwards: 70",
             f"From: <{from_uri}>;tag={tag}",
             f"To: <{to_uri}>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {uuid.uuid4().hex}@{ip}",
             f"CSeq: {cseq or '1 ' + method}",
             f"Contact: <sip:x@{ip}:{port}>",
             *headers,
             "Content-Length: 0", "", ""]
    return "\r\n".join(lines)


def final_reply(message: str, source: tuple[str, int], proxy: tuple[str, int],
                timeout: float = 3.0) -> str:
    """Send message from source to the proxy; the first final response, whole."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(source)
        sock.settimeout(timeout)
        sock.sendto(message.encode(), proxy)
        while True:
            reply = sock.recv(65535).decode(errors="replace")
            if not reply.startswith("SIP/2.0 1"):
                return reply


def exchange(message: str, source: tuple[str, int], proxy: tuple[str, int],
             timeout: float = 3.0) -> str:
    """The status line of the first final response."""
    return final_reply(message, source, proxy, timeout).split("\r\n", 1)[0]
