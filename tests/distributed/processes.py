"""Starting, stopping and accounting for the test's processes."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

from tests.distributed import hosts

VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))


def base_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANOMALY_PIPELINE_", "PYTHONPATH", "AP_"))}
    # The venv's bin first: the worker pool starts SDK harnesses as plain `python`.
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.update({"PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "2"})
    env.update(extra or {})
    return env


class Service:
    """A long-running process in its own session, output to `log_path`."""

    def __init__(self, name: str, cmd: List[str], env: Dict[str, str], log_path: str):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd="/")

    def stop(self) -> Optional[int]:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # its session: it and its workers
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=15)
        self._log.close()
        return self.proc.returncode


class Finished:
    def __init__(self, returncode: int, stdout: str, seconds: float):
        self.returncode, self.stdout, self.seconds = returncode, stdout, seconds

    @property
    def json(self) -> dict:
        """The last stdout line that is JSON (the CLI's summary), or {}."""
        for line in reversed((self.stdout or "").strip().splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
        return {}


class Command:
    """A command running to completion in its own session, stderr to `log_path`."""

    def __init__(self, cmd: List[str], env: Dict[str, str], log_path: str, cwd: str):
        self.started = time.time()
        self._err = open(log_path, "w", encoding="utf-8")
        self._err.write("$ " + " ".join(cmd) + "\n")
        self._err.flush()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True, cwd=cwd)

    def wait(self, timeout: float) -> Finished:
        """Its result; killed with its session after `timeout` s."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, _ = self.proc.communicate()
            self._err.write(f"\ntimeout after {timeout} s\n")
        self._err.close()
        return Finished(self.proc.returncode, out, round(time.time() - self.started, 1))

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_logged(cmd: List[str], env: Dict[str, str], log_path: str, timeout: float,
               cwd: str) -> Finished:
    return Command(cmd, env, log_path, cwd).wait(timeout)


def role(cmd: str) -> str:
    if "SdkHarness(" in cmd or "sdk_worker_main" in cmd:
        return "sdk_harness"
    for name in ("boot.py", "job_service.py", "worker_pool_main", "anomaly-pipeline"):
        if name in cmd:
            return name.replace(".py", "")
    return "other"


def _environ(pid: int) -> Dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return {}
    return dict(x.decode("utf-8", "replace").split("=", 1) for x in items if b"=" in x)


class Sampler(threading.Thread):
    """Process accounting of both hosts: every `interval` s, each process whose
    network namespace is one of the test's, with its command and CPU seconds."""

    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval, self.stop_event = interval, threading.Event()
        self.procs: Dict[int, dict] = {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def finish(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=10)
        self.sample()

    def sample(self) -> None:
        now = time.time()
        for ns in (hosts.NS_CLIENT, hosts.NS_WORKER):
            for pid in hosts.pids_in_netns(ns):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
                except (OSError, IndexError):
                    continue
                cpu = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
                rec = self.procs.setdefault(pid, {"pid": pid, "ppid": int(fields[1]),
                                                  "netns": ns, "cmd": "",
                                                  "first_seen": now, "cpu_s": 0.0})
                if cmd:  # boot.py execs sdk_worker_main: the newest command counts
                    rec["cmd"] = cmd
                m = re.search(r'worker_id="([^"]+)"', cmd)
                if m:
                    rec["worker_id"] = m.group(1)
                elif "sdk_worker_main" in cmd and "worker_id" not in rec:
                    rec["worker_id"] = _environ(pid).get("WORKER_ID")  # set by boot.py
                rec["cpu_s"], rec["last_seen"] = max(rec["cpu_s"], cpu), now

    def harnesses(self) -> List[dict]:
        """The SDK harness processes seen, oldest first (not their forks, which
        share their command line until they exec)."""
        out = []
        harness = {p for p, rec in self.procs.items() if role(rec["cmd"]) == "sdk_harness"}
        for rec in self.procs.values():
            if rec["pid"] not in harness or rec["ppid"] in harness:
                continue
            out.append({"pid": rec["pid"], "netns": rec["netns"],
                        "worker_id": rec.get("worker_id"),
                        "cpu_s": round(rec["cpu_s"], 1),
                        "seconds_alive": round(rec["last_seen"] - rec["first_seen"], 1),
                        "first_seen": rec["first_seen"]})
        return sorted(out, key=lambda r: r["first_seen"])

    def cpu_by_role(self) -> Dict[str, float]:
        """CPU seconds per <netns>/<role>, e.g. ap-worker/sdk_harness."""
        roles: Dict[str, float] = {}
        for rec in self.procs.values():
            key = f"{rec['netns']}/{role(rec['cmd'])}"
            roles[key] = round(roles.get(key, 0.0) + rec["cpu_s"], 1)
        return roles
