"""KCIDB v5.3 output: a run directory (or a whole matrix) as checkouts, builds and tests.

KernelCI's common results database ingests this JSON (``kci-dev`` submits it;
``kcidb_io.schema.V5_3.validate`` checks it). The mapping:

- **checkout** = the source and the patch series applied to it. Its id hashes the
  source identity, the revision and the patches' sha256, so every run of the same
  inputs names the same checkout; ``patchset_hash`` is KCIDB's own definition
  (sha256 over the newline-terminated sha256 of each patch, in order).
- **build** = the cached kernel artifact; its id is the build cache key, so jobs
  sharing a kernel share one build object.
- **test** = one per check (``path`` = ``<scenario>.<check>``) plus one for the
  run as a whole (``path`` = ``<scenario>``), whose status is the run's verdict
  -- so an infrastructure error with no checks still reaches the dashboard as
  ERROR, never as a silent gap.

Ids are ``kpharness:<...>`` (origin ``kpharness``). Everything is read from
files the run already wrote (results.json, and the artifact's metadata.json);
pure functions below do the mapping.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness import rundir

ORIGIN = "kpharness"
VERSION = {"major": 5, "minor": 3}
STATUS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skip": "SKIP"}
_PATH_PART = re.compile(r"[^A-Za-z0-9_-]+")


def _id(*parts: str) -> str:
    return f"{ORIGIN}:" + ":".join(parts)


def _h(text: str, n: int = 24) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _url(path: str | Path) -> str:
    return Path(path).resolve().as_uri()


def _path_part(name: str) -> str:
    return _PATH_PART.sub("_", name).strip("_") or "unnamed"


def patchset_hash(patch_sha256s: Iterable[str]) -> str:
    """KCIDB's patchset hash; "" when no patch was applied."""
    shas = list(patch_sha256s)
    if not shas:
        return ""
    return hashlib.sha256("".join(f"{s}\n" for s in shas).encode()).hexdigest()


def _patch_file(p: Mapping[str, Any]) -> Path:
    """Where a patch lives: next to its quilt ``series`` file (origin ``.../series:N``),
    or the mbox it came from."""
    origin = Path(str(p["origin"]).rsplit(":", 1)[0])
    return origin.parent / str(p["name"]) if origin.name == "series" else origin


def checkout_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The checkout object of an artifact's metadata.json."""
    src = meta.get("source", {})
    series = meta.get("series", [])
    shas = [str(p["sha256"]) for p in series]
    ident = json.dumps([src.get("identity"), src.get("rev"), shas])
    co: dict[str, Any] = {
        "id": _id("checkout", _h(ident)), "origin": ORIGIN,
        "tree_name": _path_part(Path(str(src.get("location") or "linux")).name),
        "patchset_hash": patchset_hash(shas), "valid": True,
        "misc": {"source": src, "series": [p.get("name") for p in series]},
    }
    rev = str(src.get("rev") or "")
    if re.fullmatch(r"[0-9a-f]{40}", rev):
        co["git_commit_hash"] = rev
    files = [{"name": str(p["name"]), "url": _url(_patch_file(p))}
             for p in series if p.get("origin") and "/" not in str(p["name"])]
    if files:
        co["patchset_files"] = files
    return co


def build_of(meta: Mapping[str, Any], artifact_dir: str | Path, checkout_id: str,
             status: str = "PASS") -> dict[str, Any]:
    """The build object of a cached artifact."""
    key = str(meta.get("key") or Path(artifact_dir).name)
    frags = [Path(str(f.get("path", ""))).stem for f in meta.get("fragments", [])]
    b: dict[str, Any] = {
        "id": _id("build", key[:24]), "origin": ORIGIN, "checkout_id": checkout_id,
        "architecture": str(meta.get("arch", "x86_64")),
        "config_name": "+".join([str(meta.get("base", "tinyconfig")), *frags]),
        "status": status,
        "misc": {"key": key, "kernel_release": meta.get("kernel_release"),
                 "artifact_dir": str(artifact_dir)},
    }
    tool = str(meta.get("toolchain") or "")
    if tool:
        b["compiler"] = tool.split(" | ")[0]
    if meta.get("built_at"):
        b["start_time"] = str(meta["built_at"]).replace("Z", "+00:00")
    total = (meta.get("durations_s") or {}).get("total")
    if isinstance(total, int | float):
        b["duration"] = float(total)
    d = Path(artifact_dir)
    if (d / "build.log").is_file():
        b["log_url"] = _url(d / "build.log")
    if (d / "config").is_file():
        b["config_url"] = _url(d / "config")
    return b


def failed_build(name: str, key: str, error: str) -> dict[str, Any]:
    """A plan kernel that did not build: a FAIL build (under a checkout named after it)."""
    co = {"id": _id("checkout", _h(f"unbuilt:{name}:{key}")), "origin": ORIGIN,
          "tree_name": _path_part(name), "valid": False, "comment": error[:500]}
    b = {"id": _id("build", (key or _h(name))[:24]), "origin": ORIGIN, "checkout_id": co["id"],
         "status": "FAIL", "log_excerpt": error[:16384], "misc": {"kernel": name}}
    return {"version": dict(VERSION), "checkouts": [co], "builds": [b], "tests": []}


def tests_of(results: Mapping[str, Any], build_id: str, run_dir: Path) -> list[dict[str, Any]]:
    """One test per check, plus the run's verdict as the scenario-level test."""
    scen = _path_part(str(results.get("scenario") or "scenario"))
    run_tag = _h(str(run_dir.resolve()), 16)
    info = results.get("info") or {}
    env = {"comment": f"QEMU {info.get('accel', '?')} guest "
                      f"({_path_part(run_dir.name)})",
           "misc": {k: info[k] for k in ("accel", "meminfo", "guest_kernel") if k in info}}
    out: list[dict[str, Any]] = []
    total = sum(float(v) for v in (results.get("timings_s") or {}).values()
                if isinstance(v, int | float))
    top: dict[str, Any] = {
        "id": _id("test", run_tag, scen), "origin": ORIGIN, "build_id": build_id, "path": scen,
        "status": STATUS.get(str(results.get("verdict")), "ERROR"), "environment": env,
        "duration": round(total, 2), "misc": {"run_dir": str(run_dir)},
    }
    if results.get("infra_error"):
        top["comment"] = f"infrastructure error: {results['infra_error']}"[:1000]
    if (run_dir / rundir.REPORT).is_file():
        top["log_url"] = _url(run_dir / rundir.REPORT)
    out.append(top)
    for c in results.get("checks", []):
        t: dict[str, Any] = {
            "id": _id("test", run_tag, scen, _path_part(str(c["name"]))), "origin": ORIGIN,
            "build_id": build_id, "path": f"{scen}.{_path_part(str(c['name']))}",
            "status": STATUS.get(str(c.get("status")), "ERROR"), "environment": env,
            "comment": str(c.get("summary") or c.get("title") or "")[:1000],
            "misc": {"measurements": c.get("measurements") or {},
                     "failed": [e["what"] for e in c.get("expectations", []) if not e["ok"]]},
        }
        art = run_dir / str(c.get("artifact") or "")
        if c.get("artifact") and art.is_file():
            t["log_url"] = _url(art)
        out.append(t)
    return out


def _artifact_meta(results: Mapping[str, Any], run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The artifact metadata of the kernel a run booted (built, or given with --kernel)."""
    k = (results.get("info") or {}).get("kernel") or {}
    candidates = []
    if k.get("artifact"):
        candidates.append(Path(str(k["artifact"])))
    if k.get("bzimage"):
        candidates.append(Path(str(k["bzimage"])).parent)
    job = run_dir / "matrix-job.json"
    if job.is_file():
        kd = json.loads(job.read_text()).get("kernel", {})
        if kd.get("artifact_dir"):
            candidates.append(Path(str(kd["artifact_dir"])))
    for d in candidates:
        if (d / "metadata.json").is_file():
            meta: dict[str, Any] = json.loads((d / "metadata.json").read_text())
            return meta, d
    bz = str(k.get("bzimage") or "unknown kernel")
    return {"key": _h(bz), "source": {"identity": f"prebuilt:{bz}", "location": bz}}, Path(bz)


def from_run_dir(run_dir: Path) -> dict[str, Any]:
    """The KCIDB v5.3 document of one ``harness run`` directory (needs its results.json)."""
    run_dir = Path(run_dir)
    results: dict[str, Any] = json.loads((run_dir / rundir.RESULTS).read_text())
    meta, art_dir = _artifact_meta(results, run_dir)
    co = checkout_of(meta)
    b = build_of(meta, art_dir, co["id"])
    return {"version": dict(VERSION), "checkouts": [co], "builds": [b],
            "tests": tests_of(results, b["id"], run_dir)}


def merge(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One document from many: objects with the same id appear once (first wins)."""
    out: dict[str, Any] = {"version": dict(VERSION), "checkouts": [], "builds": [], "tests": []}
    seen: set[tuple[str, str]] = set()
    for d in docs:
        for kind in ("checkouts", "builds", "tests"):
            for obj in d.get(kind, []):
                if (kind, obj["id"]) not in seen:
                    seen.add((kind, obj["id"]))
                    out[kind].append(obj)
    return out


def validate(doc: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``doc`` is valid KCIDB v5.3."""
    from kcidb_io.schema import V5_3  # type: ignore[import-untyped]

    V5_3.validate(dict(doc))


def write(path: Path, doc: Mapping[str, Any]) -> None:
    """Write atomically: a reader (or a crash) never sees half a document."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
