"""The output lock (components/output_lock.py) between real processes: a second
holder waits or fails naming the first, a killed holder's lock is taken over, a
lock whose recorded holder died while a child process still holds the file is
replaced, and the lock is re-entrant within a process."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from components import output_lock

HOLDER = textwrap.dedent("""
    import os, sys, time
    from components import output_lock
    with output_lock.hold(sys.argv[1], command="test holder"):
        print("locked", flush=True)
        sys.stdin.read()   # until the test closes stdin
""")
ORPHANING_HOLDER = textwrap.dedent("""
    import os, sys, time
    from components import output_lock
    fd, _ = output_lock.acquire(sys.argv[1], command="parent that dies")
    if os.fork() == 0:      # the child inherits the locked descriptor
        with open(sys.argv[2], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
        os._exit(0)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.01)
    os._exit(0)             # the recorded holder is gone; its child holds the flock
""")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start_holder(out):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_fails_at_once_naming_the_holder(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(output_lock.OutputLocked) as e:
            with output_lock.hold(str(tmp_path)):
                pass
        assert time.monotonic() - started < 2
        text = str(e.value)
        assert f"pid {holder.pid} on {socket.gethostname()}" in text
        assert "test holder" in text and "--wait" in text and str(tmp_path) in text
        assert "\n" not in text
        recorded = json.loads((tmp_path / output_lock.LOCK_FILE).read_text())
        assert recorded["pid"] == holder.pid and recorded["started"].endswith("Z")
    finally:
        holder.stdin.close()
        holder.wait(30)


def test_a_second_process_waits_and_gets_the_lock_when_the_first_ends(tmp_path):
    holder = _start_holder(tmp_path)
    seen = []
    try:
        with pytest.raises(output_lock.OutputLocked, match=r"waited 0.6 s"):
            output_lock.acquire(str(tmp_path), wait=0.6, on_wait=seen.append, poll=0.1)
        assert [h["pid"] for h in seen] == [holder.pid]  # announced once
        # The holder ends cleanly while the next one waits.
        threading.Timer(1.0, holder.stdin.close).start()
        started = time.monotonic()
        with output_lock.hold(str(tmp_path), wait=30) as previous:
            assert 0.5 < time.monotonic() - started < 20
            assert output_lock.held_here(str(tmp_path))
            assert output_lock.read_holder(str(tmp_path))["pid"] == os.getpid()
        assert previous is None  # the holder released it (or its record) cleanly
        assert output_lock.read_holder(str(tmp_path)) is None  # released: no name left
    finally:
        holder.kill()
        holder.wait(30)


def test_a_killed_holders_lock_is_taken_over(tmp_path, caplog):
    holder = _start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    with caplog.at_level("WARNING"):
        with output_lock.hold(str(tmp_path)) as previous:
            assert previous["pid"] == holder.pid
    assert "took over the lock" in caplog.text and str(holder.pid) in caplog.text


def test_a_lock_held_by_the_child_of_a_dead_holder_is_replaced(tmp_path, caplog):
    child_pid_file = tmp_path / "child.pid"
    subprocess.run([sys.executable, "-c", ORPHANING_HOLDER, str(tmp_path), str(child_pid_file)],
                   cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), check=True, timeout=60)
    child = int(child_pid_file.read_text())
    try:
        recorded = output_lock.read_holder(str(tmp_path))
        assert recorded["command"] == "parent that dies"
        assert not output_lock.holder_alive(recorded)
        with caplog.at_level("WARNING"):
            with output_lock.hold(str(tmp_path)) as previous:
                assert previous == recorded
                assert output_lock.read_holder(str(tmp_path))["pid"] == os.getpid()
        assert "replaced the stale lock" in caplog.text
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with output_lock.hold(str(tmp_path)):
        with output_lock.hold(str(tmp_path)) as inner:
            assert inner is None
        assert output_lock.held_here(str(tmp_path))  # the outer hold still counts
    assert not output_lock.held_here(str(tmp_path))


def test_a_reused_pid_is_not_the_holder():
    me = output_lock.me()
    assert output_lock.holder_alive(me)
    assert not output_lock.holder_alive(dict(me, pid_start="1"))  # another process, same pid
    assert output_lock.holder_alive(dict(me, host="elsewhere"))   # cannot tell: assume alive
