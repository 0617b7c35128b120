"""Scheduling decisions as pure functions: what a job costs, what fits now, what to build.

The engines (:mod:`.local`, :mod:`.dask_engine`) only carry these decisions out,
so the rules that keep a 2-core CI machine from being oversubscribed -- and two
builds of one kernel from ever running at once -- are unit-tested without a VM.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from harness.errors import UsageError

# A TCG guest costs more than its RAM: QEMU's own heap and translation cache,
# the `harness run` process (paramiko, the QMP sampler). Generous on purpose --
# an over-admitted guest thrashes and turns into a false infra error.
VM_OVERHEAD_MIB = 512
# Left to the rest of the machine (the driver, the page cache, other users).
HOST_RESERVE_MIB = 1024
DEFAULT_GUEST_RAM_MIB = 256

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Cost:
    """What one running job holds: cores (TCG runs one vCPU thread flat out) and RAM."""

    cores: int
    ram_mib: int


@dataclass(frozen=True)
class Capacity:
    cores: int
    ram_mib: int


def job_cost(guest_ram_mib: int | None, smp: int = 1) -> Cost:
    return Cost(max(1, smp), (guest_ram_mib or DEFAULT_GUEST_RAM_MIB) + VM_OVERHEAD_MIB)


def mem_available_mib(meminfo: str) -> int:
    """``MemAvailable`` from /proc/meminfo text, in MiB."""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    raise ValueError("no MemAvailable line in /proc/meminfo")


def host_capacity(cpu_count: int, meminfo: str, max_parallel: int | None = None) -> Capacity:
    """This machine's budget for jobs: its cores (or ``--max-parallel``) and free RAM."""
    cores = max(1, cpu_count)
    if max_parallel is not None:
        cores = max(1, min(cores, max_parallel)) if max_parallel > 0 else cores
    return Capacity(cores, max(0, mem_available_mib(meminfo) - HOST_RESERVE_MIB))


def fits(running: Iterable[Cost], cost: Cost, cap: Capacity) -> bool:
    """Whether a job of ``cost`` can start next to the ``running`` ones."""
    run = list(running)
    return (sum(c.cores for c in run) + cost.cores <= cap.cores
            and sum(c.ram_mib for c in run) + cost.ram_mib <= cap.ram_mib)


def next_admissible(pending: Sequence[Cost], running: Iterable[Cost], cap: Capacity) -> int | None:
    """Index of the first pending job that fits now, or None (wait for one to finish).

    First-fit in plan order: a big job at the head does not block smaller ones
    behind it while it cannot start.
    """
    run = list(running)
    for i, c in enumerate(pending):
        if fits(run, c, cap):
            return i
    return None


def check_admissible(costs: Mapping[str, Cost], cap: Capacity) -> None:
    """A job that could not run even on an idle machine is a usage error, named, up front."""
    for name, c in costs.items():
        if not fits([], c, cap):
            raise UsageError(f"job {name}", f"needs {c.cores} core(s) and {c.ram_mib} MiB "
                             f"(guest RAM + {VM_OVERHEAD_MIB} MiB overhead); this machine "
                             f"offers {cap.cores} core(s) and {cap.ram_mib} MiB")


def build_groups(items: Iterable[T], key_of: Callable[[T], K]) -> dict[K, list[T]]:
    """Items grouped by build key, in first-appearance order: one build per distinct key.

    This is the rule that makes two builds of one cache key impossible: a key is
    one group, and a group is built by exactly one task, before any of its jobs.
    """
    groups: dict[K, list[T]] = {}
    for it in items:
        groups.setdefault(key_of(it), []).append(it)
    return groups


def dask_resources(cost: Cost, needs_kvm: bool = False) -> dict[str, float]:
    """What a job task requests from a Dask worker started with
    ``--resources "vm=N,ram_mib=M[,kvm=N]"``: one VM slot per core, its RAM, and a KVM slot
    when the job insists on KVM (``--accel kvm``: only workers that declare ``kvm`` qualify)."""
    res = {"vm": float(cost.cores), "ram_mib": float(cost.ram_mib)}
    if needs_kvm:
        res["kvm"] = float(cost.cores)
    return res
