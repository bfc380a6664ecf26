#!/usr/bin/python3
"""The Docker stack on this kind of machine, each step idempotent (README, Docker).

    python3 docker/stack.py up [--demo]    daemon, base image, build, up, wait until healthy
    python3 docker/stack.py down [--volumes]  containers (and volumes) gone; the daemon
                                           stopped if this helper started it
    python3 docker/stack.py compose ARGS   docker-compose on docker/compose.yml (logs, exec, ps)
    python3 docker/stack.py base | build | clean   one step alone (clean: the images too)

Steps, each skipped when already done:
- docker.io, docker-compose and debootstrap installed (Debian packages);
- a Docker daemon answering: else `dockerd --iptables=false --ip6tables=false --bridge=none`
  started (no systemd here), its PID remembered in STATE_DIR, stopped by `down`;
- the base image `debian:bookworm`: no registry is reachable, so it is made with debootstrap
  from the Debian mirror this machine's apt uses (/etc/apt/sources.list.d/debian.sources)
  and `docker import`ed;
- the images built (host network: the only one there is), the services up, and waited on
  through their own healthchecks (pg_isready; an OPTIONS answered 200), never a sleep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMPOSE_FILE = HERE / "compose.yml"
PROJECT = os.environ.get("PBX_DOCKER_PROJECT", "cloud-pbx")
STATE_DIR = Path(os.environ.get("PBX_DOCKER_STATE", "/var/tmp/cloud-pbx-docker"))
DOCKERD_PID = STATE_DIR / "dockerd.pid"  # present only while a dockerd we started runs
DOCKERD_LOG = STATE_DIR / "dockerd.log"
BASE_IMAGE = "debian:bookworm"
IMAGES = ("cloud-pbx-proxy:latest", "cloud-pbx-db:latest")
SERVICES = ("db", "proxy")
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
# Debian's clients: the daemon's own version, and compose v1 (no `docker compose` plugin).
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
COMPOSE = "/usr/bin/docker-compose"
TOOLS = {"dockerd": "docker.io", COMPOSE: "docker-compose", "debootstrap": "debootstrap"}


class DockerError(RuntimeError):
    """A step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"docker-stack: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], what: str, *, check: bool = True, capture: bool = True,
        env: dict | None = None, timeout: float | None = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, capture_output=capture, text=True, env=env, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DockerError(f"{what} failed: {exc}") from None
    if check and done.returncode != 0:
        out = (done.stdout or "") + (done.stderr or "") if capture else ""
        raise DockerError(f"{what} failed ({' '.join(cmd)}), exit {done.returncode}:\n{out[-4000:]}")
    return done


# -- tools ---------------------------------------------------------------------------------

def ensure_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items()
                      if not (Path(tool).exists() or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"))})
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], "apt-get update", env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], "apt-get install",
        env=env)


# -- the daemon ----------------------------------------------------------------------------

def daemon_answers() -> bool:
    return run([DOCKER, "version", "--format", "{{.Server.Version}}"], "docker version",
               check=False, timeout=20).returncode == 0


def _started_pid() -> int | None:
    try:
        pid = int(DOCKERD_PID.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        DOCKERD_PID.unlink(missing_ok=True)
        return None
    return pid


def ensure_daemon(timeout: float = 60.0) -> bool:
    """A daemon answering; True when this call started it (then stop_daemon() stops it)."""
    if daemon_answers():
        return False
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"starting dockerd (log {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as out:
        # A session of its own: it outlives this helper between `up` and `down`.
        proc = subprocess.Popen(["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none"],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    DOCKERD_PID.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            DOCKERD_PID.unlink(missing_ok=True)
            raise DockerError(f"dockerd exited with {proc.returncode}; see {DOCKERD_LOG}")
        if daemon_answers():
            return True
        time.sleep(0.2)
    raise DockerError(f"dockerd did not answer within {timeout:.0f} s; see {DOCKERD_LOG}")


def stop_daemon(timeout: float = 30.0) -> bool:
    """Stop the dockerd this helper started (never another); True when one was stopped."""
    pid = _started_pid()
    if pid is None:
        return False
    log(f"stopping the dockerd this helper started (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        _reap(pid)
        time.sleep(0.1)
    else:
        raise DockerError(f"dockerd (pid {pid}) still running {timeout:.0f} s after SIGTERM")
    DOCKERD_PID.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    try:  # our child when up and down ran in the same process (the tests)
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# -- the base image ------------------------------------------------------------------------

def image_exists(name: str) -> bool:
    return run([DOCKER, "image", "inspect", name], f"docker image inspect {name}",
               check=False).returncode == 0


def debian_mirror() -> str:
    """The first Debian URI of this machine's apt sources (deb822)."""
    for line in SOURCES.read_text().splitlines():
        if line.startswith("URIs:") and "security" not in line:
            return line.split()[1]
    raise DockerError(f"no Debian mirror (URIs:) in {SOURCES}")


def ensure_base() -> bool:
    """debian:bookworm present; True when it was made now."""
    if image_exists(BASE_IMAGE):
        return False
    mirror = debian_mirror()
    work = Path(tempfile.mkdtemp(prefix="cloud-pbx-rootfs-", dir="/var/tmp"))
    rootfs = work / "rootfs"
    log(f"making {BASE_IMAGE} with debootstrap from {mirror} (no registry here)")
    try:
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror], "debootstrap",
            timeout=900)
        # The same sources as this machine (updates and security included), no caches.
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        shutil.copy(SOURCES, rootfs / "etc/apt/sources.list.d/debian.sources")
        # ... and the same trust anchors: a machine whose HTTPS egress (PyPI, for
        # install-deps.sh's pip) passes a CA of its own has it here; ca-certificates adds
        # them to the bundle when an image installs it. Public certificates, no secret.
        extra = rootfs / "usr/local/share/ca-certificates"
        extra.mkdir(parents=True, exist_ok=True)
        for cert in sorted(LOCAL_CAS.glob("*.crt")):
            shutil.copy(cert, extra / cert.name)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / junk).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        done = subprocess.run([DOCKER, "import", "-", BASE_IMAGE], stdin=tar.stdout,
                              capture_output=True, text=True)
        tar.stdout.close()
        if tar.wait() != 0 or done.returncode != 0:
            raise DockerError(f"docker import failed: {done.stderr}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


# -- compose -------------------------------------------------------------------------------

def compose(*args: str, project: str | None = None, env: dict | None = None,
            capture: bool = True, check: bool = True, timeout: float | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    cmd = [COMPOSE, "-f", str(COMPOSE_FILE), "-p", project or PROJECT, *args]
    return run(cmd, f"docker-compose {' '.join(args[:2])}", env={**os.environ, **(env or {})},
               capture=capture, check=check, timeout=timeout, input=input)


def build(project: str | None = None, env: dict | None = None) -> None:
    log("building the images (cached layers reused)")
    compose("build", "--force-rm", project=project, env=env, capture=False, timeout=1800)


def container(service: str, project: str | None = None, env: dict | None = None) -> str | None:
    ids = compose("ps", "-q", service, project=project, env=env).stdout.split()
    return ids[0] if ids else None


def health(cid: str) -> tuple[str, str]:
    """(state status, health status) of a container."""
    out = run([DOCKER, "inspect", "--format", "{{json .State}}", cid], "docker inspect").stdout
    state = json.loads(out)
    return state.get("Status", "?"), (state.get("Health") or {}).get("Status", "none")


def wait_healthy(services=SERVICES, project: str | None = None, env: dict | None = None,
                 timeout: float = 120.0) -> None:
    """Until every service's own healthcheck says healthy (Docker runs the checks)."""
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            cid = container(service, project, env)
            if cid:
                status, healthy = health(cid)
                if status in ("exited", "dead"):
                    logs = compose("logs", "--tail", "40", service, project=project, env=env,
                                   check=False).stdout
                    raise DockerError(f"{service} {status}:\n{logs}")
                if healthy == "healthy":
                    pending.remove(service)
        if pending and time.monotonic() > deadline:
            raise DockerError(f"not healthy within {timeout:.0f} s: {', '.join(pending)}")
        if pending:
            time.sleep(0.25)  # polling Docker's health state, not waiting for it blindly


def up(project: str | None = None, env: dict | None = None, demo: bool = False) -> dict:
    """Everything up and healthy; what it had to do (started_daemon, made_base)."""
    ensure_tools()
    started = ensure_daemon()
    made = ensure_base()
    build(project, env)
    compose("up", "-d", project=project, env=env, capture=False, timeout=300)
    wait_healthy(project=project, env=env)
    if demo:
        compose("exec", "-T", "proxy", "/usr/bin/python3", "/opt/cloud-pbx/docker/entrypoint.py",
                "demo", project=project, env=env, capture=False)
    return {"started_daemon": started, "made_base": made}


def down(project: str | None = None, env: dict | None = None, volumes: bool = False) -> None:
    """Containers (and with volumes=True the named volumes) removed; the daemon stopped if
    this helper started it."""
    if daemon_answers():
        compose("down", "--remove-orphans", *(["--volumes"] if volumes else []), project=project,
                env=env, capture=False, timeout=120)
    stop_daemon()


def clean() -> None:
    """The images too (the next `up` debootstraps and builds from nothing)."""
    for image in (*IMAGES, BASE_IMAGE):
        if image_exists(image):
            run([DOCKER, "rmi", "-f", image], f"docker rmi {image}")
    run([DOCKER, "builder", "prune", "-af"], "docker builder prune", check=False)
    run([DOCKER, "image", "prune", "-f"], "docker image prune", check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 docker/stack.py",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="daemon, base image, build, up, wait until healthy")
    p_up.add_argument("--demo", action="store_true", help="load sql/demo.sql into an empty database")
    p_down = sub.add_parser("down", help="remove the containers; stop the daemon if started here")
    p_down.add_argument("--volumes", action="store_true", help="also remove the database and state volumes")
    sub.add_parser("base", help="make debian:bookworm if absent")
    sub.add_parser("build", help="build the images")
    sub.add_parser("clean", help="remove the images and the build cache")
    p_c = sub.add_parser("compose", help="docker-compose ARGS on docker/compose.yml")
    p_c.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            t0 = time.monotonic()
            done = up(demo=args.demo)
            log(f"up and healthy in {time.monotonic() - t0:.1f} s"
                + (" (dockerd started: `down` stops it)" if done["started_daemon"] else ""))
        elif args.command == "down":
            down(volumes=args.volumes)
        elif args.command == "base":
            ensure_tools()
            ensure_daemon()
            ensure_base()
        elif args.command == "build":
            ensure_tools()
            ensure_daemon()
            ensure_base()
            build()
        elif args.command == "clean":
            if daemon_answers():
                clean()
        elif args.command == "compose":
            return subprocess.call([COMPOSE, "-f", str(COMPOSE_FILE), "-p", PROJECT, *args.args])
    except DockerError as exc:
        log(str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
