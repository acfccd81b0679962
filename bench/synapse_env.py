"""A throwaway Synapse (from PyPI) and a Parta node, both on loopback, for side-by-side benches.

``SynapseServer`` installs ``matrix-synapse`` into its own venv (``/tmp/parta-bench/synapse-venv``,
reused when it already imports), generates a config, rewrites the parts that matter for a fair
local benchmark (one plain-HTTP client listener on 127.0.0.1, SQLite, registration without
verification, rate limits out of the way, presence off, no key servers) and runs it in the
foreground as a child process so its PID (for RSS) and its shutdown are ours.

``PartaServer`` does the same with ``parta node init`` / ``parta node run``: open registration
(so the same matrix-nio ``register`` works on both), rate limits off, SQLite.

Both expose ``base_url``, ``pid``, ``start()``, ``stop()`` and ``rss_kib()`` / ``peak_rss_kib()``
read from ``/proc/<pid>/status``.  Only loopback addresses are used.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

BENCH_ROOT = "/tmp/parta-bench"
SYNAPSE_VENV = os.path.join(BENCH_ROOT, "synapse-venv")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Synapse rate limits that would throttle the load (each accepts per_second / burst_count).
_UNLIMITED = {"per_second": 100000, "burst_count": 100000}
SYNAPSE_RATE_LIMITS = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_admin_redaction": _UNLIMITED,
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 100000,
        "sleep_delay": 1,
        "reject_limit": 100000,
        "concurrent": 100000,
    },
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _stat_cpu_seconds(path: str) -> float | None:
    """utime + stime from a ``/proc/.../stat`` file (Linux), in seconds."""
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_cpu_seconds(pid: int) -> float | None:
    """CPU time of process ``pid`` (all its threads)."""
    return _stat_cpu_seconds(f"/proc/{pid}/stat")


def thread_cpu_seconds(pid: int, tid: int) -> float | None:
    """CPU time of one thread (``tid``) of ``pid``."""
    return _stat_cpu_seconds(f"/proc/{pid}/task/{tid}/stat")


def proc_status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class _Server:
    name = "server"
    pid: int | None = None
    proc: subprocess.Popen | None = None
    base_url = ""
    health_path = "/_matrix/client/versions"
    log_path = ""

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited during start-up "
                    f"({self.proc.returncode}); see {self.log_path}"
                )
            if http_status(self.base_url + self.health_path) == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start within {timeout}s; see {self.log_path}")

    def rss_kib(self) -> int | None:
        return proc_status_kib(self.pid, "VmRSS") if self.pid else None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process (all its threads) has used so far."""
        return proc_cpu_seconds(self.pid) if self.pid else None

    def main_thread_cpu_seconds(self) -> float | None:
        """CPU time of the server's main thread (Parta: the reactor thread)."""
        return thread_cpu_seconds(self.pid, self.pid) if self.pid else None

    def peak_rss_kib(self) -> int | None:
        """The kernel's high-water mark of resident memory for the whole process lifetime."""
        return proc_status_kib(self.pid, "VmHWM") if self.pid else None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


# --- Synapse -------------------------------------------------------------------------------
def ensure_synapse_venv(spec: str = "matrix-synapse") -> str:
    """Create/reuse the venv with Synapse; returns its python.  Takes ~1 min the first time."""
    python = os.path.join(SYNAPSE_VENV, "bin", "python")
    if (
        os.path.exists(python)
        and subprocess.run([python, "-c", "import synapse"], capture_output=True).returncode == 0
    ):
        return python
    os.makedirs(BENCH_ROOT, exist_ok=True)
    log(f"installing {spec} into {SYNAPSE_VENV} (first run only)")
    subprocess.run([sys.executable, "-m", "venv", SYNAPSE_VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", spec], check=True)
    return python


def synapse_version(python: str) -> str:
    res = subprocess.run(
        [python, "-c", "import synapse; print(synapse.__version__)"], capture_output=True, text=True
    )
    return res.stdout.strip() or "?"


class SynapseServer(_Server):
    name = "synapse"

    def __init__(self, workdir: str, python: str) -> None:
        self.workdir = workdir
        self.python = python
        self.port = free_port()
        self.server_name = f"localhost:{self.port}"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = os.path.join(workdir, "homeserver.yaml")
        self.log_path = os.path.join(workdir, "stdout.log")

    def configure(self) -> None:
        os.makedirs(self.workdir, exist_ok=True)
        subprocess.run(
            [
                self.python,
                "-m",
                "synapse.app.homeserver",
                "--server-name",
                self.server_name,
                "--config-path",
                self.config_path,
                "--data-directory",
                self.workdir,
                "--generate-config",
                "--report-stats=no",
            ],
            check=True,
            capture_output=True,
            cwd=self.workdir,
        )
        with open(self.config_path) as fh:
            cfg = yaml.safe_load(fh)
        cfg["listeners"] = [
            {
                "port": self.port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ]
        cfg["database"] = {
            "name": "sqlite3",
            "args": {"database": os.path.join(self.workdir, "homeserver.db")},
        }
        cfg.update(
            {
                "enable_registration": True,
                "enable_registration_without_verification": True,
                "trusted_key_servers": [],
                "suppress_key_server_warning": True,
                "report_stats": False,
                "presence": {"enabled": False},
                "url_preview_enabled": False,
                "ip_range_whitelist": ["127.0.0.1", "::1"],
            }
        )
        cfg.update(SYNAPSE_RATE_LIMITS)
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)
        # Keep Synapse's own log at WARNING: per-request INFO lines cost it CPU we don't count
        # against Parta either (Parta logs no per-request lines).
        log_config = cfg.get("log_config")
        if log_config and os.path.exists(log_config):
            with open(log_config) as fh:
                lc = yaml.safe_load(fh)
            lc.setdefault("root", {})["level"] = "WARNING"
            for logger in lc.get("loggers", {}).values():
                logger["level"] = "WARNING"
            with open(log_config, "w") as fh:
                yaml.safe_dump(lc, fh, sort_keys=False)

    def start(self) -> None:
        self.configure()
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "synapse.app.homeserver", "-c", self.config_path],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.wait_ready(180)


# --- Parta ---------------------------------------------------------------------------------
def parta_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "parta")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "import sys; from node.cli.main import main; sys.exit(main())"]


class PartaServer(_Server):
    name = "parta"
    health_path = "/health"

    def __init__(
        self, workdir: str, command: list[str] | None = None, overrides: dict | None = None
    ) -> None:
        """``command``: what runs ``parta`` (default ``parta_command()``), e.g. a bench
        wrapper such as ``bench/ingest_bound_node.py``; ``overrides``: config sections
        merged over the generated config (e.g. ``{"push": {"enabled": False}}``)."""
        self.workdir = workdir
        self.overrides = overrides or {}
        self.command = command or parta_command()
        self.port = free_port()
        self.server_name = f"localhost:{self.port}"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = os.path.join(workdir, "config.yaml")
        self.log_path = os.path.join(workdir, "stdout.log")

    def configure(self) -> None:
        subprocess.run(
            parta_command()
            + ["node", "init", "--server-name", self.server_name, "--data-dir", self.workdir],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        with open(self.config_path) as fh:
            cfg = yaml.safe_load(fh) or {}
        cfg["client_listener"] = {
            **cfg.get("client_listener", {}),
            "bind_address": "127.0.0.1",
            "port": self.port,
        }
        cfg["metrics_listener"] = {
            **cfg.get("metrics_listener", {}),
            "bind_address": "127.0.0.1",
            "port": free_port(),
        }
        if isinstance(cfg.get("federation"), dict):  # on, like Synapse's; a free port
            fed = cfg["federation"]
            fed["listener"] = {
                **fed.get("listener", {}),
                "bind_address": "127.0.0.1",
                "port": free_port(),
            }
        cfg["rate_limits"] = {**cfg.get("rate_limits", {}), "enabled": False}
        cfg["registration"] = {**cfg.get("registration", {}), "open_registration": True}
        cfg["log_level"] = "WARNING"
        for section, values in self.overrides.items():
            cfg[section] = {**(cfg.get(section) or {}), **values}
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)

    def start(self) -> None:
        self.configure()
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command + ["node", "run", "-c", self.config_path],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self.wait_ready(60)
