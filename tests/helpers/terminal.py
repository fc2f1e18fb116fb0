"""A command on a pseudo-terminal, and the lines a person would see on that screen.

`run_on_pty` gives the child a real TTY for stdout and stderr (what `make run`
in a terminal gives it), so the live progress bars are drawn; `screen_lines`
replays the bytes through a tiny terminal model (text, \\n, \\r, cursor up,
erase in line; other escape sequences ignored) and returns the lines left on
the screen: a bar redrawn 100 times in place is one line, or none once erased.
"""
import os
import pty
import re
import select
import subprocess
import time
from typing import List, Optional, Sequence, Tuple

_CSI = re.compile(rb"\x1b\[([0-9;?]*)([A-Za-z])")
_OSC = re.compile(rb"\x1b\][^\x07]*\x07")


def run_on_pty(argv: Sequence[str], timeout: float = 900, env=None, cols: int = 120,
               rows: int = 40) -> Tuple[int, bytes]:
    """Runs `argv` with stdout and stderr on a new pty; (exit status, every byte written)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("timed out; output so far:\n"
                                     + out[-4000:].decode("utf-8", "replace"))
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed its side
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                # Drain what is left, then stop.
                while select.select([master], [], [], 0.2)[0]:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        break
                    out += chunk
                break
    finally:
        os.close(master)
    return proc.wait(timeout=60), bytes(out)


def screen_lines(raw: bytes, cols: Optional[int] = None) -> List[str]:
    """The lines left on the screen after `raw` (trailing blank lines dropped)."""
    raw = _OSC.sub(b"", raw)
    lines: List[List[str]] = [[]]
    row = col = 0
    i = 0
    text = raw
    while i < len(text):
        m = _CSI.match(text, i) if text[i] == 0x1b else None
        if m:
            params, cmd = m.group(1).decode(), m.group(2).decode()
            n = int(params) if params.isdigit() else None
            if cmd == "A":
                row = max(0, row - (n or 1))
            elif cmd == "B":
                row += n or 1
            elif cmd == "G":
                col = max(0, (n or 1) - 1)
            elif cmd == "K":
                while len(lines) <= row:
                    lines.append([])
                line = lines[row]
                if n == 2:
                    line.clear()
                elif n == 1:
                    line[:col] = [" "] * min(col, len(line))
                else:
                    del line[col:]
            i = m.end()
            continue
        ch = text[i:i + 1]
        i += 1
        if ch == b"\n":
            row += 1
            col = 0
        elif ch == b"\r":
            col = 0
        elif ch == b"\x1b":  # an escape this model does not know: skip it
            continue
        elif ch in (b"\x07", b"\x08"):
            col = max(0, col - 1) if ch == b"\x08" else col
        else:
            # Decode one UTF-8 character.
            start = i - 1
            while i < len(text) and 0x80 <= text[i] < 0xC0:
                i += 1
            char = text[start:i].decode("utf-8", "replace")
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            while len(line) < col:
                line.append(" ")
            if col < len(line):
                line[col] = char
            else:
                line.append(char)
            col += 1
            if cols and col >= cols:
                row, col = row + 1, 0
        while len(lines) <= row:
            lines.append([])
    out = ["".join(line).rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out
