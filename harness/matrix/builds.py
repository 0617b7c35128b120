"""The matrix's builds: one per distinct cache key, before any job that boots it.

Jobs get ``--kernel <bzImage>`` and never build, so a plan of N jobs on one
kernel costs one build (or one cache hit), and the scenario's own build step
cannot race another job's. A build that fails makes its jobs errors (named
with the build's one-line reason); the other kernels' jobs go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.kernel.build import build_kernel, resolve_inputs
from harness.matrix.job import build_name, build_request
from harness.matrix.plan import Job
from harness.matrix.schedule import build_groups

log = logging.getLogger(__name__)


@dataclass
class KernelBuild:
    """A plan kernel after its build: the artifact, or why there is none."""

    name: str
    key: str = ""
    bzimage: str = ""
    artifact_dir: str = ""
    release: str = ""
    error: str = ""
    seconds: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)  # kernel.build.source_record

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def kernel_key(job: Job) -> str:
    """The build cache key of a job's kernel (inputs are read and validated here)."""
    return resolve_inputs(build_request(job)).cache_key()


def resolve_keys(jobs: Sequence[Job]) -> dict[str, str | HarnessError]:
    """Build name (:func:`build_name`) -> cache key, or the error that makes it unusable."""
    out: dict[str, str | HarnessError] = {}
    for j in jobs:
        name = build_name(j)
        if name not in out:
            try:
                out[name] = kernel_key(j)
            except HarnessError as exc:
                out[name] = exc
    return out


def build_all(jobs: Sequence[Job]) -> dict[str, KernelBuild]:
    """Build every distinct kernel the jobs need, one at a time; kernel name -> result.

    One at a time because a build already uses every core (make -j$(nproc));
    kernels with the same key (two plan entries that describe the same inputs)
    share one build.
    """
    import time

    keys = resolve_keys(jobs)
    first: dict[str, Job] = {}
    for j in jobs:
        first.setdefault(build_name(j), j)
    out: dict[str, KernelBuild] = {}
    valid = [n for n, k in keys.items() if isinstance(k, str)]
    for n, k in keys.items():
        if isinstance(k, HarnessError):
            out[n] = KernelBuild(n, error=k.one_line())
    groups = build_groups(valid, lambda n: str(keys[n]))
    for key, names in groups.items():
        t0 = time.monotonic()
        log.info("matrix: kernel %s (key %s)", ", ".join(names), key[:12])
        try:
            art = build_kernel(build_request(first[names[0]]))
            res: dict[str, Any] = {
                "key": art.key, "bzimage": str(art.bzimage), "artifact_dir": str(art.dir),
                "release": str(art.metadata.get("kernel_release", "")),
                "source": dict(art.metadata.get("source", {}))}
            err = ""
        except HarnessError as exc:
            log.error("matrix: kernel %s did not build: %s", names[0], exc.one_line())
            res, err = {"key": key}, exc.one_line()
        for n in names:
            out[n] = KernelBuild(n, error=err, seconds=round(time.monotonic() - t0, 1),
                                 **res)
    return out


def bzimage_of(kb: KernelBuild) -> Path | None:
    return Path(kb.bzimage) if kb.bzimage and not kb.error else None
