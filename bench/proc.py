"""CPU time of processes and of the whole machine, from /proc (Linux), for the benches."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(text: str) -> list[str]:
    """The fields of a /proc/<pid>/stat line from the third (the state) on.

    The command name (the second) may hold spaces and parentheses: split after its
    last ")". utime and stime, the 14th and 15th fields, are at 11 and 12 here.
    """
    return text[text.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far, its threads included."""
    fields = stat_fields(Path(f"/proc/{pid}/stat").read_text())
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_ticks() -> tuple[int, int]:
    """Busy and total CPU ticks of the whole machine so far (every core)."""
    # user nice system idle iowait irq softirq steal; guest time is already in user.
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return sum(ticks) - idle, sum(ticks)
