"""The README's pbxctl walk-through, run verbatim against an empty database of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import psycopg2
import pytest

from kemi.config import ROOT

README = (ROOT / "README.md").read_text()


def walkthrough(mark: str = "runs these lines verbatim") -> list[str]:
    """The shell lines of the block that follows the mark, continuation lines joined and
    comments kept (bash ignores them)."""
    start = README.index(mark)
    block = README[README.index("```sh\n", start) + 6:]
    block = block[:block.index("```")]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def run_block(mark: str, env: dict[str, str]) -> dict[str, str]:
    """Each line of the block after mark, run in bash: its stdout by the line (comment cut)."""
    shown = {}
    for line in walkthrough(mark):
        done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (line, done.stderr)
        shown[line.split("#")[0].strip()] = done.stdout
    return shown


@pytest.fixture
def empty_dsn(stack):
    admin = psycopg2.connect(stack.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE readme_walkthrough")
    yield stack.dsn.replace("dbname=pbx", "dbname=readme_walkthrough")
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE readme_walkthrough WITH (FORCE)")
    admin.close()


def test_the_walkthrough_works_verbatim_from_an_empty_database(empty_dsn, stack):
    lines = walkthrough()
    assert len(lines) >= 10 and all(line.startswith("./pbxctl ") for line in lines), lines
    env = {**os.environ, "PBX_DSN": empty_dsn, "PBX_STATE_DIR": stack.config.state_dir}
    for line in lines:
        # `sim add` asks the password: one line on stdin, as a script would give it.
        done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, input="demo-79181110003\n",
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (line, done.stderr)
        assert "Traceback" not in done.stderr
    managers = json.loads(subprocess.run(
        [str(ROOT / "pbxctl"), "manager", "list", "--json"], env=env, capture_output=True,
        text=True, check=True).stdout)
    assert [(m["name"], m["position"]) for m in managers] == [("Boris", 1), ("Ivan", 2)]
    explained = subprocess.run([str(ROOT / "pbxctl"), "explain", "--from", "89891234567",
                                "--to", "88622550101"], env=env, capture_output=True, text=True)
    # Only Ivan has a SIM in the walk-through; the proxy was asked whether it is registered.
    assert re.search(r"hunt\s+\+79181110003 \((not )?registered\)", explained.stdout), explained.stdout
    # Masked client numbers, on the same company: keys made, masking on, rotated.
    keys = Path(stack.config.state_dir) / "readme-mask.keys"
    env["PBX_MASK_KEYS_FILE"] = str(keys)
    shown = run_block("runs these masking lines verbatim", env)
    token = shown['./pbxctl mask --company "Kuban Realty" 89891234567'].split()[-1]
    assert re.fullmatch(r"\+280[0-9]{15}", token)  # made with key 0
    assert token in shown["./pbxctl explain --from 89891234567 --to 88622550101"]
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    assert [line.split()[0] for line in keys.read_text().splitlines()
            if line.strip() and not line.startswith("#")] == ["1"]  # 0 retired
    # Sticky manager, on the same company: settings, the district's window, explain's reason.
    said = run_block("runs these sticky lines verbatim", env)
    assert "14 days" in said['./pbxctl district list --company "Kuban Realty"']
    assert re.search(r"sticky\s+no: no answered call of this client",
                     said["./pbxctl explain --from 89891234567 --to 88622550101"])
