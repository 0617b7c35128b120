"""Which kernel a run builds: the scenario's ``[kernel]``, each part replaced by an override.

One rule, used by every path that turns a scenario plus options into a build -- ``harness run``
(CLI options), a matrix job (its plan kernel) and the matrix's own prebuild of that job (so the
job's build is the cache hit it must be), the VM tests: ``--patches`` (a plan's ``series``)
replaces the scenario's series, ``--config`` (``fragments``) its fragments, and the source,
revision, base and ``-j`` are the override's or the defaults. A part left out (None) is the
scenario's, and where the scenario says nothing, the harness default. The configuration the
scenario's kselftests ask for (``[kselftest]``, :attr:`ScenarioSpec.kselftest_configs`) is
merged whatever the overrides say: it is what the tests need, not a choice of kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.core.spec import ScenarioSpec
from harness.kernel.build import BuildRequest


@dataclass(frozen=True)
class KernelOverrides:
    """What the user (or a plan) said about the kernel; None = "the scenario's"."""

    source: str | Path | None = None
    rev: str | None = None
    series: tuple[Path, ...] | None = None  # () = explicitly no series
    fragments: tuple[str, ...] | None = None
    base: str | None = None
    jobs: int | None = None
    arch: str | None = None  # None: the default architecture (harness.arch)
    page_size: str | None = None  # None: the architecture's default


def kernel_request(spec: ScenarioSpec, over: KernelOverrides = KernelOverrides(),
                   extra_series: Sequence[Path] = ()) -> BuildRequest:
    """The scenario's kernel with ``over``'s parts replacing its own, ``extra_series`` on top
    (a negative control's patches)."""
    default = BuildRequest()
    if over.series is not None:
        series = over.series
    elif "series" in spec.data.get("kernel", {}):
        series = spec.series
    else:
        series = default.series
    fragments = over.fragments if over.fragments is not None else (spec.fragments
                                                                    or default.fragments)
    return BuildRequest(source=over.source, rev=over.rev,
                        series=tuple(series) + tuple(extra_series), fragments=tuple(fragments),
                        base=over.base or default.base, jobs=over.jobs,
                        arch=over.arch or default.arch, page_size=over.page_size,
                        kselftest_configs=spec.kselftest_configs,
                        config_missing_ok=spec.config_missing_ok)
