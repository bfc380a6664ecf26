"""SIP over a plain UDP socket, for forged, malformed and hostile messages SIPp cannot write,
and a small digest client (RFC 2617, qop=auth) for guessing passwords as an attacker would."""

from __future__ import annotations

import hashlib
import re
import socket
import uuid


def build(method: str, ruri: str, source: tuple[str, int], *, from_uri: str, to_uri: str,
          to_tag: str | None = None, headers: tuple[str, ...] = (), cseq: str | None = None,
          call_id: str | None = None, contact: str | None = None, from_tag: str | None = None) -> str:
    ip, port = source
    lines = [f"{method} {ruri} SIP/2.0",
             f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
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
    """One UDP socket playing a SIP phone (or an attacker) toward the proxy."""

    def __init__(self, source: tuple[str, int], proxy: tuple[str, int], timeout: float = 2.0):
        self.source, self.proxy = source, proxy
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(source)
        self.sock.settimeout(timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Phone":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def send(self, message: str) -> str | None:
        """The first final response to message, None when nothing answers (a ban)."""
        self.sock.sendto(message.encode(), self.proxy)
        try:
            while True:
                reply = self.sock.recv(65535).decode(errors="replace")
                if not reply.startswith("SIP/2.0 1"):
                    return reply
        except socket.timeout:
            return None

    def request(self, method: str, user: str, called: str | None = None, *,
                password: str | None = None, contact: str | None = None,
                headers: tuple[str, ...] = ()) -> tuple[str | None, str | None]:
        """A REGISTER (called None) or INVITE as `user`, challenged once and answered with
        `password` when one is given: (status line of the last answer, that answer)."""
        proxy = f"{self.proxy[0]}:{self.proxy[1]}"
        ruri = f"sip:{proxy}" if called is None else f"sip:{called}@{proxy}"
        aor = f"sip:{user}@pbx.local"
        to_uri = aor if called is None else f"sip:{called}@pbx.local"
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:10]
        extra = ("Expires: 600",) if method == "REGISTER" else ()

        def message(cseq: int, auth: tuple[str, ...] = ()) -> str:
            return build(method, ruri, self.source, from_uri=aor, to_uri=to_uri,
                         call_id=call_id, from_tag=tag, cseq=f"{cseq} {method}",
                         contact=contact, headers=(*headers, *extra, *auth))

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
        self.sock.sendto("\r\n".join(lines).encode(), self.proxy)
