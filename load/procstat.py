"""Process-tree statistics from /proc for the load runner: CPU time, RSS, peak RSS, pinning.

A server under test may be one process (Tornado, the reference with one worker) or a tree
(nginx master + workers, pre-forked reference workers), so every figure here is summed
over the process and all its descendants, found by walking parent PIDs in /proc.
"""
from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return data[data.rindex(")") + 2:].split()


def tree(root: int) -> list[int]:
    """root and all its live descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if os.path.exists(f"/proc/{pid}"):
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def cpu_times(root: int) -> tuple[float, float]:
    """(user, kernel) CPU time of the tree in seconds: utime and stime (processes that
    already exited are lost)."""
    user = system = 0
    for pid in tree(root):
        fields = _stat_fields(pid)
        if fields:
            user += int(fields[11])  # utime (field 14)
            system += int(fields[12])  # stime (field 15)
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(root: int) -> float:
    """utime + stime of the tree, in seconds (processes that already exited are lost)."""
    return sum(cpu_times(root))


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(root: int) -> int:
    """Current resident set (VmRSS) summed over the tree, in KiB."""
    return sum(_status_kb(pid, "VmRSS") for pid in tree(root))


def peak_rss_kb(root: int) -> int:
    """Peak resident set (VmHWM) summed over the tree, in KiB."""
    return sum(_status_kb(pid, "VmHWM") for pid in tree(root))


def reset_peak_rss(root: int) -> None:
    """Resets VmHWM to the current RSS (writing 5 to clear_refs) so that the next
    peak_rss_kb() is the peak of one scenario, not of the process's life."""
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def threads(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def pin(root: int, cpus: set[int]) -> dict:
    """Sets the CPU affinity of every thread of every process in the tree (what
    `taskset -a -p -c` does); processes forked later inherit it. Returns what was done,
    checked by reading the affinity back: {"cpus", "pids" (every thread of these is on
    cpus), "threads", "failed" (pid/tid -> why not)}."""
    done, failed, n = [], {}, 0
    for pid in tree(root):
        ok = True
        for tid in threads(pid):
            try:
                os.sched_setaffinity(tid, cpus)
                if os.sched_getaffinity(tid) != set(cpus):
                    raise OSError(f"affinity reads back as {sorted(os.sched_getaffinity(tid))}")
                n += 1
            except ProcessLookupError:
                continue  # the thread ended meanwhile
            except OSError as e:
                ok = False
                failed[f"{pid}/{tid}"] = str(e)
        if ok:
            done.append(pid)
    return {"cpus": sorted(cpus), "pids": sorted(done), "threads": n, "failed": failed}


def affinity(root: int) -> dict[int, set[int]]:
    """The CPU affinity of every thread in the tree (to put back with restore_affinity)."""
    out = {}
    for pid in tree(root):
        for tid in threads(pid):
            try:
                out[tid] = os.sched_getaffinity(tid)
            except OSError:
                pass
    return out


def restore_affinity(root: int, saved: dict[int, set[int]]) -> dict:
    """Puts back the affinities `saved` by affinity(root); threads started since (forked
    workers, new threads) get the root's saved affinity. Returns {"threads": n restored,
    "failed": tid -> why}."""
    default = saved.get(root)
    n, failed = 0, {}
    for pid in tree(root):
        for tid in threads(pid):
            cpus = saved.get(tid, saved.get(pid, default))
            if cpus is None:
                continue
            try:
                os.sched_setaffinity(tid, cpus)
                n += 1
            except ProcessLookupError:
                continue
            except OSError as e:
                failed[tid] = str(e)
    return {"threads": n, "failed": failed}


def _socket_inodes(pid: int) -> set[int] | None:
    """The inodes of the sockets pid holds (None: its fds cannot be read)."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    out = set()
    for fd in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def listening_ports(root: int) -> set[int] | None:
    """TCP ports the tree listens on (IPv4 and IPv6), or None if its fds cannot be read."""
    inodes, readable = set(), False
    for pid in tree(root):
        got = _socket_inodes(pid)
        if got is not None:
            readable = True
            inodes |= got
    if not readable:
        return None
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == "0A" and int(fields[9]) in inodes:  # 0A: LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def parse_cpu_list(text: str) -> set[int]:
    """"0", "0,2", "0-3" -> a set of CPU numbers."""
    cpus: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-")
            cpus.update(range(int(lo), int(hi) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def raise_nofile(wanted: int) -> int:
    """Raises this process's RLIMIT_NOFILE soft limit towards `wanted` (up to the hard
    limit); children started afterwards (servers, wrk) inherit it. Returns the new limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def cpu_busy_seconds(cpus: set[int]) -> float:
    """Busy time (everything but idle and iowait) of the given CPUs since boot, from
    /proc/stat. The runner subtracts the server's and wrk's own CPU time from the change
    over a run to see how much *other* work shared their cores (a noisy machine)."""
    total = 0
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                fields = line.split()
                if int(fields[0][3:]) in cpus:
                    v = [int(x) for x in fields[1:]]
                    # user nice system idle iowait irq softirq steal (guest is in user)
                    total += v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return total / CLK_TCK
