#!/usr/bin/env python3
"""Developer entry point: the README's two commands.

    python3 dev.py run  [crm serve args...]   set up .venv, `crm setup`, then `crm serve`
    python3 dev.py test [pytest args...]      set up .venv, run the suite on SQLite, then on PostgreSQL,
                                              then the evals against the offline model

Standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
# See DEPENDENCIES.md: without this pin, anything that pulls torch makes pip choose a multi-GB CUDA
# build; with it pip takes the local CPU wheel. A no-op while nothing depends on torch.
CONSTRAINTS = "torch==2.13.0\n"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# The SQLite suite runs a second time with the clock moved here (tests/conftest.py, time-machine):
# a Sunday at year end, late evening in UTC, so a test that reads the wall clock fails now, not
# on some future day. CRM_TEST_TRAVEL picks another moment.
TRAVEL_TO = "2028-12-31T22:30:00+00:00"

USAGE = f"""\
usage: python3 dev.py run  [crm serve args...]
       python3 dev.py test [pytest args...]

  run    Create .venv (if missing), install the project into it (again only when
         pyproject.toml changed), then `crm setup` (migrate, default workspace, demo data
         when the store is empty, print the demo users' tokens) and `crm serve`.
         Extra args go to `crm serve`, e.g. `python3 dev.py run --port 8001`.

  test   Same environment step, then the whole pytest suite twice: on SQLite (spread
         over up to 4 cores with pytest-xdist) and on PostgreSQL (CRM_TEST_POSTGRES_URL,
         default {DEFAULT_PG_URL}).
         Extra args go to pytest, e.g. `python3 dev.py test -x -k deals`.
         If PostgreSQL does not answer (and cannot be started here), its run is skipped,
         or, when CI=true, the command fails.
         Then the SQLite suite once more with the clock moved to {TRAVEL_TO}
         (serially: a clock travel does not reach pytest-xdist workers), and
         `crm eval --model offline` over evals/datasets (report in a temporary folder):
         the command fails on any unapproved write or leak. Both are skipped when pytest
         args are given (a partial run), unless CRM_EVAL=1.
"""


def say(msg: str) -> None:
    print(msg, flush=True)


def die(msg: str, code: int = 1) -> None:
    print(f"dev.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


# --- environment ------------------------------------------------------------------------------


def venv_works() -> bool:
    python = BIN / "python"
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", ""], capture_output=True).returncode == 0


def ensure_env() -> None:
    """Create .venv if needed and (re)install the project when pyproject.toml changed."""
    # dev.py runs under whatever `python3` is, before the venv (and requires-python) applies.
    if sys.version_info < (3, 11):  # noqa: UP036
        die(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]} ({sys.executable})")
    if not venv_works():
        if VENV.exists():
            say(".venv is broken (its python does not run); recreating it")
            shutil.rmtree(VENV)
        say("creating .venv")
        made = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if made.returncode != 0:
            print(made.stdout + made.stderr, file=sys.stderr)
            die("could not create .venv (on Debian/Ubuntu: apt-get install python3-venv)")

    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + CONSTRAINTS.encode()).hexdigest()
    stamp = VENV / f".installed-{digest}"
    if not stamp.exists():
        for old in VENV.glob(".installed-*"):  # a failed install leaves no stamp behind
            old.unlink()
        constraints = VENV / "constraints.txt"
        constraints.write_text(CONSTRAINTS)
        say('installing the project into .venv (pip install -e ".[test]") ...')
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        cmd = [str(BIN / "python"), "-m", "pip", "install", "-c", str(constraints), "-e", ".[test]"]
        pip = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if pip.returncode != 0:
            print(pip.stdout + pip.stderr, file=sys.stderr)
            die(f"pip install failed (exit {pip.returncode}); output above")
        stamp.touch()
    say("environment ready (.venv)")


def crm_path() -> str:
    crm = BIN / "crm"
    if not crm.exists():
        die(f"{crm} is missing: the project's `crm` console script did not install")
    return str(crm)


# --- run --------------------------------------------------------------------------------------


def cmd_run(args: list[str]) -> int:
    ensure_env()
    crm = crm_path()
    setup = subprocess.run([crm, "setup"], cwd=ROOT)
    if setup.returncode != 0:
        die(f"`crm setup` failed (exit {setup.returncode})", max(setup.returncode, 1))
    os.chdir(ROOT)
    sys.stdout.flush()
    os.execv(crm, [crm, "serve", *args])  # replaces this process: Ctrl-C stops the server
    return 0  # not reached


# --- test -------------------------------------------------------------------------------------

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def pg_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError:
        return False
    if shutil.which("pg_isready"):  # the port is open; is the server accepting connections?
        ready = subprocess.run(
            ["pg_isready", "-q", "-h", host, "-p", str(port), "-t", "5"], capture_output=True
        )
        return ready.returncode == 0
    return True


def try_start_pg() -> bool:
    """Start the local cluster(s) the Debian way; True if a start command succeeded."""
    conf = Path("/etc/postgresql")
    if not conf.is_dir() or not shutil.which("pg_ctlcluster"):
        return False
    started = False
    for version in sorted(p.name for p in conf.iterdir() if (p / "main").is_dir()):
        say(f"starting PostgreSQL {version}/main ...")
        cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode == 0:
            started = True
        else:
            say(f"  pg_ctlcluster: {(res.stdout + res.stderr).strip() or f'exit {res.returncode}'}")
    return started


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    return url


def postgres_available(url: str) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    if pg_answers(host, port):
        return True
    if host in LOCAL_HOSTS and try_start_pg():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if pg_answers(host, port):
                return True
            time.sleep(0.5)
    return False


def run_pytest(label: str, backend: str, pg_url: str | None, args: list[str], travel: str | None = None) -> int:
    say(f"\n=== tests on {label} ===")
    env = {**os.environ, "CRM_TEST_DATABASE": backend}
    env.pop("CRM_TEST_TRAVEL", None)
    if pg_url:
        env["CRM_TEST_POSTGRES_URL"] = pg_url
    else:
        env.pop("CRM_TEST_POSTGRES_URL", None)  # unreachable: nothing should try it
    if travel:
        env["CRM_TEST_TRAVEL"] = travel
    start = time.monotonic()
    # A moved clock exists only in the process that moved it, so that run stays in one process.
    spread = ["-p", "no:xdist"] if travel else parallel(backend, args)
    cmd = [str(BIN / "python"), "-m", "pytest", "-p", "no:cacheprovider", *spread, *args]
    rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    outcome = "passed" if rc == 0 else ("FAILED: no tests collected" if rc == 5 else f"FAILED (exit {rc})")
    say(f"=== {label}: {outcome} in {time.monotonic() - start:.1f}s ===")
    return rc


def parallel(backend: str, args: list[str]) -> list[str]:
    """SQLite runs spread over the cores (each pytest-xdist worker has its own database file);
    PostgreSQL runs stay serial: the workers would share one database. `-n` given wins."""
    cores = os.cpu_count() or 1
    if backend != "sqlite" or cores < 2 or any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args):
        return []
    return ["-n", str(min(cores, 4))]


def ensure_espeak() -> None:
    """espeak-ng speaks the test calls (tests/speech.py) and the transcribe bench's audio: install it
    where it is missing and we can (root with apt-get); otherwise those tests skip and say why."""
    if shutil.which("espeak-ng"):
        return
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        say("espeak-ng missing and cannot be installed here (apt-get install espeak-ng); the spoken-call "
            "tests will be skipped")
        return
    say("installing espeak-ng (speaks the test calls)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok = subprocess.run(["apt-get", "install", "-y", "-qq", "espeak-ng"], env=env, capture_output=True).returncode == 0
    if not ok:  # the package lists may be stale or absent
        ok = (subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True).returncode == 0 and
              subprocess.run(["apt-get", "install", "-y", "-qq", "espeak-ng"], env=env,
                             capture_output=True).returncode == 0)
    if not ok:
        say("could not install espeak-ng; the spoken-call tests will be skipped")


def cmd_test(args: list[str]) -> int:
    ensure_env()
    ensure_espeak()
    pg_url = os.environ.get("CRM_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    shown = redact(pg_url)
    pg_ok = postgres_available(pg_url)
    if not pg_ok:
        if os.environ.get("CI") == "true":
            die(f"PostgreSQL not reachable at {shown} and could not be started; CI needs it")
        say(f"PostgreSQL not reachable at {shown}; PostgreSQL run skipped")

    runs = [("SQLite", "sqlite")] + ([("PostgreSQL", "postgres")] if pg_ok else [])
    codes = [run_pytest(label, backend, pg_url if pg_ok else None, args) for label, backend in runs]
    partial = any(not a.startswith("--durations") for a in args) and os.environ.get("CRM_EVAL") != "1"
    if not partial:
        travel = os.environ.get("CRM_TEST_TRAVEL") or TRAVEL_TO
        runs.append((f"SQLite at {travel}", "sqlite"))
        codes.append(run_pytest(f"SQLite, clock moved to {travel}", "sqlite", None, args, travel=travel))
        runs.append(("evals (offline model)", "eval"))
        codes.append(run_eval())
    failed = [label for (label, _), rc in zip(runs, codes, strict=True) if rc != 0]
    if failed:
        say(f"\ntest runs failed: {', '.join(failed)}")
        return next(rc for rc in codes if rc != 0)
    done = [label for label, _ in runs]
    say(f"\nall test runs passed ({', '.join(done)}{'' if pg_ok else '; PostgreSQL skipped'})")
    return 0


def run_eval() -> int:
    """The eval suite against the offline model; exits 1 on any unapproved write or leak."""
    import tempfile

    say("\n=== evals: crm eval --model offline ===")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crm-eval-report-") as out:
        rc = subprocess.run([str(BIN / "crm"), "eval", "--model", "offline", "--quiet", "--out", out],
                            cwd=ROOT, env={**os.environ}).returncode
    say(f"=== evals: {'passed' if rc == 0 else f'FAILED (exit {rc})'} in {time.monotonic() - start:.1f}s ===")
    return rc


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        return cmd_run(rest)
    if command == "test":
        return cmd_test(rest)
    print(USAGE, file=sys.stderr)
    die(f"unknown command {command!r}", 2)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
