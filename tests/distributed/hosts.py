"""The test's two hosts: network namespaces joined by a veth pair, addresses it assigns.

    ap-client  ap-c0 <client_ip>/24  <--veth-->  ap-w0 <worker_ip>/24  ap-worker

Loopback is up in each; the root namespace gets no address or route, so the
only targets are loopback and these two addresses. Both hosts share this
machine's filesystem (the data, the pipeline root and the models have the same
paths on both, as a shared filesystem gives a real deployment). The names are
fixed, so `exclusive()` makes concurrent runs on one machine take turns.
"""
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from typing import List, Optional, Sequence

NS_CLIENT, NS_WORKER = "ap-client", "ap-worker"
VETH_CLIENT, VETH_WORKER = "ap-c0", "ap-w0"
LOCK_FILE = "/run/lock/anomaly-pipeline-test-distributed.lock"


@contextlib.contextmanager
def exclusive(timeout: float):
    """Holds the machine-wide lock of these namespaces (waits up to `timeout` s)."""
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    with open(LOCK_FILE, "w") as f:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise TimeoutError(f"another run holds {LOCK_FILE}")
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sh(*cmd, check=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


def netns_inode(name: str) -> Optional[int]:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def netns_id(name: str) -> str:
    """How /proc/<pid>/ns/net names the namespace: net:[<inode>]."""
    return f"net:[{netns_inode(name)}]"


def pids_in_netns(name: str) -> List[int]:
    """What `ip netns pids NAME` lists: processes whose network namespace is NAME's."""
    ino = netns_inode(name)
    if ino is None:
        return []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}/ns/net").st_ino == ino:
                    out.append(int(d))
            except OSError:
                pass
    return out


def remove() -> List[str]:
    """Ends what runs in the two namespaces (only this test starts processes there),
    deletes them (the veth pair goes with them) and a leftover veth end."""
    done = []
    for ns in (NS_CLIENT, NS_WORKER):
        if netns_inode(ns) is None:
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids_in_netns(ns):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 10
            while pids_in_netns(ns) and time.time() < deadline:
                time.sleep(0.2)
        sh("ip", "netns", "del", ns, check=False)
        done.append(ns)
    for dev in (VETH_CLIENT, VETH_WORKER):
        if sh("ip", "link", "show", dev, check=False).returncode == 0:
            sh("ip", "link", "del", dev, check=False)
            done.append(dev)
    return done


def create(client_ip: str, worker_ip: str, prefix: int = 24) -> None:
    for ns in (NS_CLIENT, NS_WORKER):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", VETH_CLIENT, "netns", NS_CLIENT, "type", "veth",
       "peer", "name", VETH_WORKER, "netns", NS_WORKER)
    for ns, dev, ip in ((NS_CLIENT, VETH_CLIENT, client_ip), (NS_WORKER, VETH_WORKER, worker_ip)):
        sh("ip", "-n", ns, "addr", "add", f"{ip}/{prefix}", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def on_client(cmd: Sequence[str]) -> List[str]:
    return ["ip", "netns", "exec", NS_CLIENT, *cmd]


def on_worker(cmd: Sequence[str], hidden: Sequence[str] = ()) -> List[str]:
    """`cmd` on the worker host; each directory in `hidden` is covered by an empty
    read-only tmpfs in a private mount namespace (the client's source tree, so the
    worker imports only the project it was given)."""
    if not hidden:
        return ["ip", "netns", "exec", NS_WORKER, *cmd]
    mounts = " && ".join(f"mount -t tmpfs -o size=64k,mode=0555 ap-hidden '{d}'" for d in hidden)
    return ["ip", "netns", "exec", NS_WORKER, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", f'{mounts} && exec "$@"', "worker-host", *cmd]


def wait_reachable(host: str, port: int, timeout: float) -> bool:
    """Whether the client host can open a TCP connection to host:port within `timeout` s."""
    probe = ("import socket,sys,time\n"
             f"end=time.time()+{timeout}\n"
             "while time.time()<end:\n"
             f"    try: socket.create_connection(('{host}',{port}),2).close(); sys.exit(0)\n"
             "    except OSError: time.sleep(0.5)\n"
             "sys.exit(1)\n")
    return sh(*on_client([sys.executable, "-c", probe]), check=False,
              timeout=timeout + 30).returncode == 0
