"""SIP over plain sockets (UDP, TCP, TLS), for forged, malformed and hostile messages SIPp
cannot write, and a small digest client (RFC 2617, qop=auth) for guessing passwords as an
attacker would, or for a phone that keeps its TLS connection open as mobile SIMs do."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import uuid


def build(method: str, ruri: str, source: tuple[str, int], *, from_uri: str, to_uri: str,
          to_tag: str | None = None, headers: tuple[str, ...] = (), cseq: str | None = None,
          call_id: str | None = None, contact: str | None = None, from_tag: str | None = None,
          transport: str = "UDP") -> str:
    ip, port = source
    lines = [f"{method} {ruri} SIP/2.0",
             f"Via: SIP/2.0/{transport} {ip}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
             "Max-Forwards: 70",
             f"From: <{from_uri}>;tag={from_tag or uuid.uuid4().hex[:10]}",
             f"To: <{to_uri}>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {call_id or uuid.uuid4().hex + '@' + ip}",
             f"CSeq: {cseq or '1 ' + method}",
             f"Contact: {contact or f'<sip:x@{ip}:{port}>'}",
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


def header(message: str, name: str) -> str | None:
    """The first value of a header (long name), None when absent."""
    match = re.search(rf"^{re.escape(name)}\s*:\s*(.*)$", message, re.M | re.I)
    return match.group(1).strip() if match else None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest(challenge: str, method: str, uri: str, user: str, password: str,
           nc: int = 1) -> str:
    """The Authorization value answering a WWW-/Proxy-Authenticate challenge."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = params["realm"], params["nonce"]
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    cnonce, count = uuid.uuid4().hex[:8], f"{nc:08x}"
    if "qop" in params:
        response = _md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc={count}, cnonce="{cnonce}"'
    else:
        response, extra = _md5(f"{ha1}:{nonce}:{ha2}"), ""
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5{extra}')


class Phone:
    """One socket playing a SIP phone (or an attacker) toward the proxy: a UDP socket, or a
    TCP or TLS connection kept open (the proxy reaches a SIM back on it)."""

    def __init__(self, source: tuple[str, int], proxy: tuple[str, int], timeout: float = 2.0,
                 transport: str = "udp"):
        self.source, self.proxy, self.transport = source, proxy, transport
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(source)
        else:
            self.sock = socket.create_connection(proxy, timeout=timeout, source_address=source)
            if transport == "tls":
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # the proxy's test certificate is self-signed
                self.sock = context.wrap_socket(self.sock)
            self.source = self.sock.getsockname()
        self.sock.settimeout(timeout)
        self._buffer = b""

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Phone":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def write(self, message: str) -> None:
        if self.transport == "udp":
            self.sock.sendto(message.encode(), self.proxy)
        else:
            self.sock.sendall(message.encode())

    def read(self) -> str | None:
        """The next whole SIP message (framed by Content-Length on a stream), None on timeout."""
        try:
            if self.transport == "udp":
                return self.sock.recv(65535).decode(errors="replace")
            while b"\r\n\r\n" not in self._buffer:
                chunk = self.sock.recv(65535)
                if not chunk:
                    return None
                self._buffer += chunk
            head, _, rest = self._buffer.partition(b"\r\n\r\n")
            length = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.M | re.I)
            size = int(length.group(1)) if length else 0
            while len(rest) < size:
                chunk = self.sock.recv(65535)
                if not chunk:
                    return None
                rest += chunk
            self._buffer = rest[size:]
            return (head + b"\r\n\r\n" + rest[:size]).decode(errors="replace")
        except (socket.timeout, TimeoutError):
            return None

    def send(self, message: str) -> str | None:
        """The first final response to message, None when nothing answers (a ban)."""
        self.write(message)
        while True:
            reply = self.read()
            if reply is None or not reply.startswith("SIP/2.0 1"):
                return reply

    def request(self, method: str, user: str, called: str | None = None, *,
                password: str | None = None, contact: str | None = None,
                headers: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
        """A REGISTER (called None) or INVITE as `user`, challenged once and answered with
        `password` when one is given: (status line of the last answer, that answer)."""
        proxy = f"{self.proxy[0]}:{self.proxy[1]}"
        params = "" if self.transport == "udp" else f";transport={self.transport}"
        ruri = f"sip:{proxy}{params}" if called is None else f"sip:{called}@{proxy}{params}"
        aor = f"sip:{user}@pbx.local"
        to_uri = aor if called is None else f"sip:{called}@pbx.local"
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:10]
        extra = ("Expires: 600",) if method == "REGISTER" else ()
        contact = contact or f"<sip:{user}@{self.source[0]}:{self.source[1]}{params}>"

        def message(cseq: int, auth: tuple[str, ...] = ()) -> str:
            return build(method, ruri, self.source, from_uri=aor, to_uri=to_uri,
                         call_id=call_id, from_tag=tag, cseq=f"{cseq} {method}",
                         contact=contact, headers=(*headers, *extra, *auth),
                         transport=self.via_transport)

        reply = self.send(message(1))
        if reply is not None and password is not None and reply.split(" ", 2)[1] in ("401", "407"):
            name = "WWW-Authenticate" if reply.split(" ", 2)[1] == "401" else "Proxy-Authenticate"
            answer = "Authorization" if name == "WWW-Authenticate" else "Proxy-Authorization"
            self.ack_if_invite(method, reply, ruri, aor, to_uri, call_id, tag, 1)
            creds = digest(header(reply, name), method, ruri, user, password)
            reply = self.send(message(2, (f"{answer}: {creds}",)))
            self.ack_if_invite(method, reply, ruri, aor, to_uri, call_id, tag, 2)
        return (reply.split("\r\n", 1)[0] if reply else None), reply

    def ack_if_invite(self, method, reply, ruri, aor, to_uri, call_id, tag, cseq) -> None:
        """A final non-2xx answer to an INVITE is acknowledged (RFC 3261 17.1.1.3)."""
        if method != "INVITE" or reply is None or reply.startswith("SIP/2.0 2"):
            return
        to = header(reply, "To") or f"<{to_uri}>"
        via = header(reply, "Via")
        lines = [f"ACK {ruri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70",
                 f"From: <{aor}>;tag={tag}", f"To: {to}", f"Call-ID: {call_id}",
                 f"CSeq: {cseq} ACK", "Content-Length: 0", "", ""]
        self.write("\r\n".join(lines))

    def answer(self, request: str, status: str, to_tag: str) -> None:
        """Answer a request the proxy sent: its Via, From, Call-ID, CSeq and Record-Route
        copied (RFC 3261 8.2.6), the To tagged."""
        keep = [line for line in request.split("\r\n")[1:]
                if re.match(r"(Via|v|From|f|Call-ID|i|CSeq|Record-Route)\s*:", line, re.I)]
        to = header(request, "To") or header(request, "t")
        lines = [f"SIP/2.0 {status}", *keep, f"To: {to};tag={to_tag}",
                 f"Contact: <sip:{self.source[0]}:{self.source[1]};transport={self.transport}>",
                 "Content-Length: 0", "", ""]
        self.write("\r\n".join(lines))
