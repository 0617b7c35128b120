"""The flagship scenario: the userland shrinker (patches/mempressure-shrinker) under pressure.

Its parts: :mod:`.checks` (the checks as pure functions and their registry), :mod:`.protocol`
(what runs in the guest), :mod:`.judge` (saved run dir -> checks), :mod:`.workload_output`
(parsers of mpstress/mpctl output), :mod:`.timeline` (the report's picture).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.core.plugin import CheckDef, KernelInfo, RunContext, SavedRun
from harness.core.results import CheckResult
from harness.core.spec import ScenarioSpec, check_keys
from harness.errors import UsageError
from harness.scenarios.mempressure import checks, judge, protocol, timeline

#: Parameters every mempressure scenario file must have, and their types.
REQUIRED: dict[str, dict[str, type]] = {
    "workload": {"name": str, "cgroup": str, "chunk_size": int, "regrow_ms": int,
                 "interface_file": str},
    "notifications": {"idle_wait_ms": int, "working_set_factor": float, "work_factor": float,
                      "stress_timeout_s": int, "squeeze_at_s": int, "squeeze_mib": int,
                      "squeeze_hold_s": int, "squeeze_bound_s": int},
    "contract": {"program": str, "timeout_s": int},
    "child_cgroup": {"name": str, "limit_mib": int, "max_chunks": int, "work_factor": float,
                     "swap_slack_mib": int, "timeout_s": int},
}


#: Parameters a section may have beyond the required ones.
OPTIONAL: dict[str, set[str]] = {"notifications": {"asked_per_deficit", "min_deficit_mib"},
                                  "contract": {"args"}}
#: Every top-level key and table of a mempressure scenario.
TOP_KEYS = {"name", "type", "description", "checks", "kernel", "vm", "guest", "reference",
            *REQUIRED}


class Mempressure:
    type_name = "mempressure"

    def validate(self, spec: ScenarioSpec) -> None:
        """Every parameter the protocol reads, checked before the kernel is built; a key it
        does not read (a typo) is an error too."""
        check_keys(spec.data, TOP_KEYS, str(spec.path))
        for section, keys in REQUIRED.items():
            for key, kind in keys.items():
                spec.get(section, key, kind)
            check_keys(spec.data[section], set(keys) | OPTIONAL.get(section, set()),
                       f"{spec.path} [{section}]")
        # Optional, so that runs saved before it existed are judged again as they were.
        band = spec.get("notifications", "asked_per_deficit", list, [0, 1])
        spec.get("notifications", "min_deficit_mib", int, 0)
        if not (len(band) == 2 and all(isinstance(x, (int, float)) for x in band)
                and 0 <= band[0] < band[1]):
            raise UsageError(f"{spec.path} [notifications] asked_per_deficit",
                             f"must be [low, high] with 0 <= low < high, not {band!r}")
        protocol.contract_args(spec.get("contract", "args", list, []),
                               f"{spec.path} [contract] args")
        ref = spec.data.get("reference")
        if ref is not None:
            if not isinstance(ref, dict):
                raise UsageError(f"{spec.path} [reference]", "must be a table")
            unknown = sorted(set(ref) - {"label", "setup"})
            if unknown:
                raise UsageError(f"{spec.path} [reference] {unknown[0]}",
                                 "unknown key (known: label, setup)")
            spec.get("reference", "label", str)
            setup = ref.get("setup", [])
            if not (isinstance(setup, list) and all(isinstance(c, str) for c in setup)):
                raise UsageError(f"{spec.path} [reference] setup", "must be a list of strings")
        if spec.vm.cgroup != "v1":
            raise UsageError(f"{spec.path} [vm] cgroup",
                             "the shrinker lives in the cgroup v1 memory controller: use \"v1\"")

    def checks(self, spec: ScenarioSpec) -> Sequence[CheckDef]:
        return checks.CHECKS

    def prepare(self, spec: ScenarioSpec, kernel: KernelInfo) -> dict[str, Path]:
        """The workload binaries, and the series' selftest built from the tree under test
        (none with a prebuilt --kernel: the contract check is then skipped, and says why)."""
        from harness.arch import get_arch
        from harness.kselftest import SELFTESTS, build_kselftests
        from harness.workloads import build_workload

        arch = get_arch(kernel.arch)  # cross-compiled for the guest's architecture
        bins = build_workload(spec.get("workload", "name", str), arch=arch)
        files = {f"{protocol.GUEST_BIN}/{name}": path for name, path in bins.items()}
        program = spec.get("contract", "program", str)
        tree = kernel.source_tree
        if tree is not None and (tree / SELFTESTS / f"{program}.c").is_file():
            files.update(build_kselftests(tree, [], [program], arch=arch).ship())
        return files

    def exercise(self, ctx: RunContext) -> None:
        protocol.Protocol(ctx).run(ctx.planned)

    def judge(self, run: SavedRun) -> list[CheckResult]:
        return judge.judge(run)

    def timeline_svg(self, run: SavedRun) -> str:
        return timeline.run_svg(run)


SCENARIO = Mempressure()
