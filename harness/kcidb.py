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
  ERROR, never as a silent gap -- plus one per KTAP/TAP case of a check
  (results.json ``checks[].cases``: ``path`` = ``<scenario>.<check>.<case>``,
  the case's own dotted path kept as sub-levels, each component reduced to
  KCIDB's ``[A-Za-z0-9_-]``).
- **issue** / **incident** (:func:`issues_and_incidents`) = the known issues
  (harness.console.known) that console findings matched: one issue per known
  issue (``kpharness:<issue id>``, its version, culprit, report URL, its title
  pattern as the comment) and one incident per matched finding, linking that
  issue and version to the test the finding belongs to, or to the build.

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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import rundir
from harness.arch import DEFAULT_ARCH, DEFAULT_PAGE_SIZE
from harness.console.known import KnownIssue
from harness.console.types import Finding

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


def case_path(name: str) -> list[str]:
    """A case's dotted name ("suite.sub.case") as KCIDB path components."""
    return [_path_part(part) for part in name.split(".")]


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
        "architecture": str(meta.get("arch", DEFAULT_ARCH)),
        "config_name": "+".join([str(meta.get("base", "tinyconfig")), *frags]),
        "status": status,
        "misc": {"key": key, "kernel_release": meta.get("kernel_release"),
                 "artifact_dir": str(artifact_dir),
                 "page_size": str(meta.get("page_size") or DEFAULT_PAGE_SIZE)},
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
        out.extend(_case_tests(c, t, build_id, env))
    return out


def _case_tests(check: Mapping[str, Any], parent: Mapping[str, Any], build_id: str,
                env: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One test per KTAP/TAP case of a check, under the check's path.

    Two cases whose names reduce to the same path (``a b`` and ``a_b``) get
    ``_2``, ``_3``... on the later ones: ids and paths stay unique.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for case in check.get("cases") or []:
        name = str(case.get("name") or "")
        parts = case_path(name)
        path = ".".join([parent["path"], *parts])
        n = 1
        while path in seen:
            n += 1
            path = ".".join([parent["path"], *parts[:-1], f"{parts[-1]}_{n}"])
        seen.add(path)
        t: dict[str, Any] = {
            "id": f"{parent['id']}:{path.removeprefix(parent['path'] + '.')}",
            "origin": ORIGIN, "build_id": build_id, "path": path,
            "status": STATUS.get(str(case.get("status")), "ERROR"),
            "environment": dict(env), "misc": {"case": name, "check": str(check["name"])},
        }
        if case.get("message"):
            t["comment"] = str(case["message"])[:1000]
        if case.get("log"):
            t["log_excerpt"] = str(case["log"])[:16384]
        if "log_url" in parent:
            t["log_url"] = parent["log_url"]
        out.append(t)
    return out


def issues_and_incidents(
    known_matches: Iterable[tuple[Finding, KnownIssue | None]],
    build_id: str,
    test_ids: str | Sequence[str | None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """KCIDB v5.3 issues and incidents of console findings matched to known issues.

    ``known_matches`` is what ``harness.console.known.match`` returns; pairs
    without an issue are skipped.  ``test_ids`` says which test each finding
    belongs to: one id for all, or one per pair (in order; None or "" for a
    finding of no test), or None.  A finding of no test gets an incident on
    ``build_id``.

    Issues: one per known issue (first seen order), id ``kpharness:<id>``,
    its version, ``culprit`` with exactly its one layer true, ``report_url``
    when it has one, ``comment`` = its title pattern (or signature).
    Incidents: one per matched finding, ``present`` true, id derived from the
    issue, the target and the finding (same inputs, same ids).
    """
    pairs = [(f, k) for f, k in known_matches]
    if test_ids is None or isinstance(test_ids, str):
        targets: list[str | None] = [test_ids or None] * len(pairs)
    else:
        targets = list(test_ids)
        if len(targets) != len(pairs):
            raise ValueError(f"{len(targets)} test ids for {len(pairs)} findings")
    issues: dict[str, dict[str, Any]] = {}
    incidents: list[dict[str, Any]] = []
    for n, ((finding, known), target) in enumerate(zip(pairs, targets, strict=True)):
        if known is None:
            continue
        issue_id = _id(known.id)
        if issue_id not in issues:
            issue: dict[str, Any] = {
                "id": issue_id, "version": known.version, "origin": ORIGIN,
                "culprit": {c: known.culprit == c for c in ("code", "tool", "harness")},
                "comment": known.pattern[:1000],
                "misc": {"policy": known.policy, "matches_on": known.pattern},
            }
            if known.url:
                issue["report_url"] = known.url
            if known.comment:
                issue["misc"]["comment"] = known.comment
            issues[issue_id] = issue
        link = {"test_id": target} if target else {"build_id": build_id}
        key = f"{known.id}|{target or build_id}|{finding.signature}|{finding.line}|{n}"
        incidents.append({
            "id": _id("incident", _h(key)), "origin": ORIGIN, "issue_id": issue_id,
            "issue_version": known.version, **link, "present": True,
            "comment": finding.title[:1000],
            "misc": {"kind": finding.kind, "signature": finding.signature,
                     "line": finding.line, "policy": known.policy,
                     "corrupted": finding.corrupted},
        })
    return list(issues.values()), incidents


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
    tests = tests_of(results, b["id"], run_dir)
    doc: dict[str, Any] = {"version": dict(VERSION), "checkouts": [co], "builds": [b],
                           "tests": tests}
    known = _known_matches(run_dir)
    if any(k is not None for _, k in known):
        top = next((t["id"] for t in tests if "." not in t["path"]), None)
        issues, incidents = issues_and_incidents(known, b["id"], top)
        doc["issues"], doc["incidents"] = issues, incidents
    return doc


REPEAT_STATUS = {"pass": "PASS", "fail": "FAIL", "flaky": "FAIL", "error": "ERROR",
                 "skip": "SKIP"}


def repeat_tests(doc: Mapping[str, Any], build_id: str, root: Path) -> list[dict[str, Any]]:
    """The combined tests of a ``--repeat`` set: the scenario and each check once, with its
    verdict (flaky is FAIL, as it fails the set), pass rate, Wilson interval and per-repeat
    statuses in ``misc.repeat_summary``; the scenario's carries the measurements' spread."""
    scen = _path_part(str(doc.get("scenario") or "scenario"))
    tag = _h(str(root.resolve()), 16)
    n = doc["repeats"]
    out: list[dict[str, Any]] = [{
        "id": _id("test", tag, scen, "repeat"), "origin": ORIGIN, "build_id": build_id,
        "path": scen, "status": REPEAT_STATUS.get(str(doc.get("verdict")), "ERROR"),
        "duration": float(doc.get("seconds") or 0.0),
        "comment": f"{doc.get('verdict')} over {n} repeats",
        "misc": {"repeat_summary": {
            "repeats": n, "verdict": doc.get("verdict"), "run_dir": str(root),
            "measurements": [{k: m[k] for k in ("check", "name", "unit", "direction", "n",
                                                "median", "min", "max")}
                             for m in doc.get("measurements", [])]}}}]
    for c in doc.get("checks", []):
        rate = "n/a" if c.get("pass_rate") is None else f"{c['pass_rate']:.0%}"
        out.append({
            "id": _id("test", tag, scen, _path_part(str(c["name"])), "repeat"),
            "origin": ORIGIN, "build_id": build_id,
            "path": f"{scen}.{_path_part(str(c['name']))}",
            "status": REPEAT_STATUS.get(str(c["verdict"]), "ERROR"),
            "comment": (f"{c['verdict']}: {c['passes']}/{c['total']} passed ({rate}), 95% "
                        f"Wilson [{c['wilson95'][0]:.3f}, {c['wilson95'][1]:.3f}]")[:1000],
            "misc": {"repeat_summary": {k: c[k] for k in ("verdict", "passes", "total",
                                                          "pass_rate", "wilson95",
                                                          "statuses")}}})
    return out


def from_repeat_dir(root: Path) -> dict[str, Any]:
    """The KCIDB document of ``harness run --repeat N``: every repeat's own tests (each with
    ``misc.repeat`` = its index and N) plus the set's combined tests (:func:`repeat_tests`)."""
    root = Path(root)
    doc: dict[str, Any] = json.loads((root / rundir.RESULTS).read_text())
    n = int(doc["repeats"])
    parts = []
    for i, name in enumerate(doc.get("run_dirs", []), start=1):
        d = root / str(name)
        if not (d / rundir.RESULTS).is_file():
            continue
        one = from_run_dir(d)
        for t in one["tests"]:
            t.setdefault("misc", {})["repeat"] = {"index": i, "of": n}
        parts.append(one)
    out = merge(parts)
    if out["builds"]:
        out["tests"] += repeat_tests(doc, str(out["builds"][0]["id"]), root)
    return out


def _known_matches(run_dir: Path) -> list[tuple[Finding, KnownIssue | None]]:
    """The run's console findings matched against the known issues it was judged with."""
    from harness.console import classify_text
    from harness.console.known import REPO_KNOWN_ISSUES, load_known, match, merge_known

    console = run_dir / rundir.CONSOLE
    if not console.is_file():
        return []
    own = run_dir / rundir.KNOWN_ISSUES
    known = merge_known(load_known(REPO_KNOWN_ISSUES) if REPO_KNOWN_ISSUES.is_file() else [],
                        load_known(own) if own.is_file() else [])
    return match(classify_text(console.read_text(errors="replace")), known)


def merge(docs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One document from many: objects with the same id appear once (first wins).

    Issues are the same object per id *and version*; ``issues`` and
    ``incidents`` appear only when some document has them.
    """
    out: dict[str, Any] = {"version": dict(VERSION), "checkouts": [], "builds": [], "tests": []}
    seen: set[tuple[str, ...]] = set()
    for d in docs:
        for kind in ("checkouts", "builds", "tests", "issues", "incidents"):
            for obj in d.get(kind, []):
                key = (kind, obj["id"], str(obj.get("version", "")) if kind == "issues" else "")
                if key not in seen:
                    seen.add(key)
                    out.setdefault(kind, []).append(obj)
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
