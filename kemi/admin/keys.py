"""pbxctl mask, unmask and key: what support staff do with masked client numbers (README,
Masked client numbers). Keys are secrets: only their ids are ever printed or audited."""

from __future__ import annotations

import getpass
import json
import os
import re
import secrets
import tempfile
from pathlib import Path

from ..config import Config, ConfigError
from ..masking import Keys, Masker, MaskError, dialed_token
from .fields import InputError, phone_number

KEY_IDS = "0123456789"  # a token carries its key's id as one digit
PICKED_UP = "the proxy picks it up within a second"


def masker() -> Masker | None:
    """The keys the proxy uses (PBX_MASK_KEYS_FILE or PBX_MASK_KEYS); None without any."""
    keys = Config.from_env().mask_keys()
    return Masker(keys) if keys is not None else None


def _masker() -> Masker:
    found = masker()
    if found is None:
        raise ConfigError("no masking keys: set PBX_MASK_KEYS_FILE, the proxy's key file "
                          "(pbxctl key rotate --file F creates one)")
    return found


def audit(admin, operation: str, **facts) -> None:
    """One audit row per use, in the command's transaction. Never the client's number (the
    audit must not become a client list: whoever may read the audit would read the clients)
    and never a key: the company, the token and key ids are enough to say who looked."""
    facts["os_user"] = getpass.getuser()
    admin.session.run("audit_mask", {"operation": operation,
                                     "new_row": json.dumps(facts, sort_keys=True)})


def mask(admin, company: str, typed: str) -> str:
    number = phone_number("number", typed, admin.region)
    company_id = admin.company_id(company)
    found = _masker()
    token = found.mask(number, company_id)
    audit(admin, "MASK", company=company, token=token, key_id=found.keys.active)
    return token


def token_of(typed: str) -> str:
    """A token as pasted: spaces, dashes and the dialers' prefixes (00, 810) allowed."""
    token = dialed_token(re.sub(r"[\s().-]", "", typed))
    if token is None:
        raise InputError("token", typed, "is not a token (+28 and 12 to 20 more digits)")
    return token


def unmask(admin, company: str, typed: str) -> str:
    token = token_of(typed)
    company_id = admin.company_id(company)
    number = _masker().unmask(token, company_id)
    audit(admin, "UNMASK", company=company, token=token, decoded=number is not None)
    if number is None:
        admin.session.commit()  # refused, but the attempt stays on record
        raise InputError("token", token, f"does not decode for company {company}: another "
                         "company's, mistyped, or made with a retired key")
    return number


# -- the key file ------------------------------------------------------------------------

def _read(path: Path) -> tuple[str, Keys | None]:
    """The file's text and its keys; ("", None) when it does not exist or lists none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return "", None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    if not any(line.split("#", 1)[0].split() for line in text.splitlines()):
        return text, None
    try:
        return text, Keys.parse(text, str(path))
    except MaskError as exc:
        raise ConfigError(str(exc)) from None


def _rows(keys: Keys) -> list[dict]:
    return [{"id": kid, "active": kid == keys.active,
             "tokens": "makes and decodes" if kid == keys.active else "decodes only"}
            for kid in sorted(keys.by_id)]


def key_list(path: Path) -> list[dict]:
    _, keys = _read(path)
    if keys is None:
        raise ConfigError(f"{path}: lists no key (pbxctl key rotate --file {path} makes one)")
    return _rows(keys)


def key_rotate(admin, path: Path) -> tuple[list[dict], str]:
    """A fresh AES-128 key under the lowest free id, active; the old ones stay listed, so
    the tokens in managers' call histories still decode until they are retired."""
    text, keys = _read(path)
    used = set(keys.by_id) if keys else set()
    free = [kid for kid in KEY_IDS if kid not in used]
    if not free:
        raise InputError("file", str(path), "lists keys 0-9 already: retire one first "
                                            "(pbxctl key retire ID)")
    kid = free[0]
    lines = [_inactive(line) for line in text.splitlines()] or [
        "# masking keys (pbxctl key): ID HEXKEY [active]; secret, keep it mode 0600"]
    new = _replace(admin, path, lines + [f"{kid} {secrets.token_hex(16)} active"], "ROTATE",
                   active=kid)
    old = sorted(used)
    still = (f"; key{'s' * (len(old) > 1)} {', '.join(old)} still decode{'s' * (len(old) == 1)} "
             f"older tokens until retired (pbxctl key retire ID)") if old else ""
    return _rows(new), f"key {kid} is active: new tokens use it{still}; {PICKED_UP}"


def key_retire(admin, path: Path, kid: str) -> tuple[list[dict], str]:
    text, keys = _read(path)
    if keys is None or kid not in keys.by_id:
        raise InputError("key", kid, f"is not listed in {path}")
    if kid == keys.active:
        raise InputError("key", kid, "is the active key: rotate first (pbxctl key rotate), "
                                     "then retire it once its tokens need not decode")
    new = _replace(admin, path, [line for line in text.splitlines()
                                 if line.split("#", 1)[0].split()[:1] != [kid]], "RETIRE",
                   retired=kid)
    return _rows(new), (f"key {kid} retired: tokens made with it no longer decode (dialled, "
                        f"they get 404); {PICKED_UP}")


def _inactive(line: str) -> str:
    """A key line without its `active` mark; comments and other lines as they are."""
    body, hash_, comment = line.partition("#")
    words = body.split()
    if len(words) != 3:  # parsed already: a third word is `active`
        return line
    return " ".join(words[:2]) + (f"  #{comment}" if hash_ else "")


def _replace(admin, path: Path, lines: list[str], operation: str, **facts) -> Keys:
    """Audited first (refused if it cannot be), then the file replaced at once: a temporary
    file beside it renamed over it, so the proxy, which re-reads it when it changes, never
    sees half a list."""
    text = "\n".join(lines) + "\n"
    keys = Keys.parse(text, str(path))  # never write what the proxy would refuse
    audit(admin, operation, file=str(path), ids=sorted(keys.by_id), **facts)
    path = path.resolve()  # a symlinked file (a mounted secret, say): replace its target
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if before is not None and (before.st_uid, before.st_gid) != (os.getuid(), os.getgid()):
            os.chown(temp, before.st_uid, before.st_gid)  # the proxy's user must still read it
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise ConfigError(f"{path}: {exc.strerror}") from None
    return keys
