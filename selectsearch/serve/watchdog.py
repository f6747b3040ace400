"""Reap what ``selectsearch serve`` started, even when it is killed with SIGKILL.

A local Ray instance is a tree of processes under ``selectsearch serve``: the GCS, the raylet,
the monitor, the log monitor and the actors' workers, plus two agents started by the raylet
(``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``). Ray ties the first ones to the driver with
``PR_SET_PDEATHSIG`` and ``ray.shutdown()`` stops the rest, but when the driver dies without
running its cleanup (SIGKILL, the OOM killer) the two agents are re-parented to init and stay,
listening, for ever (they notice the raylet's death, then hang reporting it to the dead GCS).

:func:`start_watchdog` starts a small process in its own session that holds the read end of a
pipe whose write end only the serving process has. Every second it records the serving
process's descendants (pid and start time, from ``/proc``); when the pipe reads end-of-file —
the serving process is gone, however it died — it sends SIGTERM to every recorded process that
still runs with the same start time, then SIGKILL to those still there after a grace period,
and exits. Linux only (elsewhere :func:`start_watchdog` does nothing).

Example:
    >>> start_watchdog()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time

__all__ = ["descendants", "listening_sockets", "reap", "start_watchdog"]

_started: list[tuple[subprocess.Popen[bytes], int]] = []


def _stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, start time in clock ticks)`` of a live process, from ``/proc/PID/stat``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()  # after "pid (comm) ": state, ppid, ... starttime is 20th
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: ``{pid: start time}`` (``root`` itself excluded)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append(int(name))
            starts[int(name)] = st[1]
    out: dict[int, int] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in out or pid not in starts:
            continue
        out[pid] = starts[pid]
        todo.extend(children.get(pid, []))
    return out


def _address(hex_addr: str) -> str:
    """An address of ``/proc/net/tcp[6]`` (little-endian words of hex) as text."""
    import ipaddress

    raw = bytes.fromhex(hex_addr)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ipaddress.ip_address(raw)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def listening_sockets(root: int) -> list[dict[str, object]]:
    """The sockets ``root`` and its descendants listen on, in this network namespace: TCP
    sockets in ``LISTEN`` and bound UDP sockets, as ``{"proto", "address", "port", "pid",
    "process"}`` (``/proc`` only; an IPv4-mapped IPv6 address is shown as IPv4).

    Example:
        >>> {s["address"] for s in listening_sockets(os.getpid())} <= {"127.0.0.1", "::1"}  # doctest: +SKIP
        True
    """
    pids = [root, *descendants(root)]
    owner: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        owner.setdefault(target[8:-1], pid)
        except OSError:
            continue
    out: list[dict[str, object]] = []
    for proto, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        try:
            with open(f"/proc/net/{proto}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 10 or fields[3] != state or fields[9] not in owner:
                continue
            host, port = fields[1].rsplit(":", 1)
            pid = owner[fields[9]]
            try:
                with open(f"/proc/{pid}/comm") as f:
                    name = f.read().strip()
            except OSError:
                name = "?"
            out.append({"proto": proto, "address": _address(host), "port": int(port, 16), "pid": pid, "process": name})
    return sorted(out, key=lambda s: (str(s["proto"]), int(str(s["port"]))))


def reap(known: dict[int, int], grace_s: float = 3.0) -> list[int]:
    """SIGTERM, then after ``grace_s`` SIGKILL, every process of ``known`` still running with its
    recorded start time (a reused pid is left alone); returns the pids signalled."""
    def alive() -> list[int]:
        out = []
        for pid, start in known.items():
            st = _stat(pid)
            if st is not None and st[1] == start:
                out.append(pid)
        return out

    signalled = alive()
    for pid in signalled:
        with contextlib.suppress(OSError):  # gone already
            os.kill(pid, signal.SIGTERM)
    t = time.monotonic()
    while time.monotonic() - t < grace_s:
        if not alive():
            return signalled
        time.sleep(0.1)
    for pid in alive():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return signalled


def start_watchdog(interval_s: float = 1.0) -> int | None:
    """Start the watchdog of this process (once); returns its pid, or ``None`` off Linux."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc"):
        return None
    if _started:
        return _started[0][0].pid
    read_end, write_end = os.pipe()  # not inheritable: Ray's processes never hold the write end
    try:
        proc = subprocess.Popen([sys.executable, "-m", "selectsearch.serve.watchdog", str(os.getpid()),
                                 str(interval_s)], stdin=read_end, stdout=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        os.close(read_end)
    _started.append((proc, write_end))  # the write end stays open until this process is gone
    return proc.pid


def main(argv: list[str]) -> int:
    """``python -m selectsearch.serve.watchdog PARENT_PID [INTERVAL_S]`` with the pipe on stdin."""
    parent, interval = int(argv[0]), float(argv[1]) if len(argv) > 1 else 1.0
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    me = os.getpid()
    known: dict[int, int] = {}
    while True:
        readable, _, _ = select.select([0], [], [], interval)
        if readable and not os.read(0, 4096):
            break  # end of file: the serving process is gone
        seen = descendants(parent)
        seen.pop(me, None)
        known.update(seen)
        known = {pid: start for pid, start in known.items() if (st := _stat(pid)) is not None and st[1] == start}
    reap(known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
