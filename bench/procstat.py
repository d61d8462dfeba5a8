"""CPU time and memory of processes and of the whole machine, read from Linux's /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (uvicorn with workers > 1 forks them)."""
    by_parent: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
        by_parent.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in by_parent.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its live descendants."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        # fields here start at stat's field 3: utime and stime are stat fields 14 and 15
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (shared pages counted once per process)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class MachineCpu:
    """Busy and total CPU seconds of the whole machine, summed over cores, since boot."""

    busy_s: float
    total_s: float

    @classmethod
    def read(cls) -> MachineCpu:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        ticks = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
        idle = ticks[3] + ticks[4]
        return cls(busy_s=(sum(ticks) - idle) / _TICKS, total_s=sum(ticks) / _TICKS)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each thread of ``pid``: tid -> (kernel thread name, seconds)."""
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(task.name)] = (comm, (int(fields[11]) + int(fields[12])) / _TICKS)
    return out
