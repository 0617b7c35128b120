"""KCIDB v5.3 output validated by kcidb-io on real results.json / metadata.json shapes.

The documents below are trimmed copies of what a real ``harness run`` wrote (a
matrix job booting a cached artifact with ``--kernel``) and of that artifact's
metadata.json; the negative controls prove the validator is not a rubber stamp.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness import kcidb

META: dict[str, Any] = {
    "key": "80a62a438598e1f58b5ba521ee208e8242b84328f84fcf95d47a431575411bfe",
    "kernel_release": "6.12.117",
    "source": {"kind": "tarball", "location": "/usr/src/linux-source-6.12.tar.xz",
               "identity": "tar:585a4a074597aefa2b1a68ada83a3184ba351c127544dea80618bbcceaa3961f",
               "rev": None},
    "series": [{"name": "0001-eventfd-add-eventfd_signal_count.patch",
                "origin": "/work/main/patches/mempressure-shrinker/series:1",
                "sha256": "4e87dbd8ccbbc17ecf08152fb8e36f590e037acdc9bb743ee1e11273ce2b60dc"},
               {"name": "0004-memcg-v1-add-memory.pressure_shrinker.patch",
                "origin": "/work/main/patches/mempressure-shrinker/series:4",
                "sha256": "fe1d1cc30c5b1efd7f47a5264506361d9b71373331e9cc6ec60f3a03b0e43d7a"}],
    "fragments": [{"path": "/work/main/kernel-config/guest.config", "sha256": "00"}],
    "base": "tinyconfig", "toolchain": "gcc (Debian 12.2.0-14+deb12u1) 12.2.0 | GNU ld 2.40",
    "arch": "x86_64", "durations_s": {"total": 48.94}, "built_at": "2026-12-01T08:35:36Z",
}

RESULTS: dict[str, Any] = {
    "schema": 2, "scenario": "clamping", "verdict": "fail", "run_dir": "RUN", "infra_error": None,
    "interrupted": None,
    "checks": [
        {"name": "clamping", "title": "counter clamping and bad input", "status": "fail",
         "summary": "1 of 12 expectation(s) failed", "artifact": "mpctl.out", "measurements": {},
         "expectations": [{"what": "register, +10, -25 -> read-back", "expected": "chunks=0",
                           "observed": "ok {'chunks': '4294967281'}", "ok": False}],
         "cases": []},
        {"name": "oom_absence", "title": "no OOM kill", "status": "error",
         "summary": "SSH lost", "artifact": "console.log", "measurements": {"oom_kill": 0},
         "expectations": [], "cases": []}],
    "findings": [],
    "info": {"scenario": "clamping", "type": "mempressure",
             "kernel": {"bzimage": "ART/bzImage", "prebuilt": True}, "accel": "tcg",
             "guest_kernel": "6.12.117",
             "meminfo": "MemTotal:         247816 kB\nSwapTotal:        262140 kB",
             "vm": {"ram_mib": 256, "swap_mib": 256, "smp": 1}},
    "timings_s": {"build kernel": 0.0, "boot": 6.72, "clamping": 20.96},
}


def _run_dir(tmp_path: Path, name: str = "run", results: dict[str, Any] | None = None) -> Path:
    art = tmp_path / "artifact"
    art.mkdir(exist_ok=True)
    (art / "metadata.json").write_text(json.dumps(META))
    (art / "bzImage").write_bytes(b"kernel")
    (art / "build.log").write_text("log")
    run = tmp_path / name
    run.mkdir()
    doc = copy.deepcopy(results or RESULTS)
    doc["run_dir"] = str(run)
    doc["info"]["kernel"]["bzimage"] = str(art / "bzImage")
    (run / "results.json").write_text(json.dumps(doc))
    (run / "mpctl.out").write_text("x")
    return run


def test_run_dir_maps_to_valid_kcidb(tmp_path: Path) -> None:
    doc = kcidb.from_run_dir(_run_dir(tmp_path))
    kcidb.validate(doc)
    assert doc["version"] == {"major": 5, "minor": 3}
    (co,), (b,) = doc["checkouts"], doc["builds"]
    assert co["origin"] == "kpharness" and co["id"].startswith("kpharness:")
    assert len(co["patchset_hash"]) == 64
    assert co["patchset_files"][0]["url"].endswith(
        "/patches/mempressure-shrinker/0001-eventfd-add-eventfd_signal_count.patch")
    assert b["checkout_id"] == co["id"] and b["status"] == "PASS"
    assert b["id"] == "kpharness:build:" + META["key"][:24]
    tests = {t["path"]: t for t in doc["tests"]}
    assert {p: t["status"] for p, t in tests.items()} == {
        "clamping": "FAIL", "clamping.clamping": "FAIL", "clamping.oom_absence": "ERROR"}
    assert all(t["build_id"] == b["id"] for t in doc["tests"])
    assert tests["clamping.clamping"]["misc"]["failed"] == ["register, +10, -25 -> read-back"]
    assert tests["clamping.clamping"]["log_url"].endswith("/run/mpctl.out")


def test_patchset_hash_is_kcidbs_definition() -> None:
    # sha256sum *.patch | cut -c-64 | sha256sum  -- over "<sha>\n" lines
    import hashlib

    shas = ["a" * 64, "b" * 64]
    assert kcidb.patchset_hash(shas) == hashlib.sha256(
        ("a" * 64 + "\n" + "b" * 64 + "\n").encode()).hexdigest()
    assert kcidb.patchset_hash([]) == ""


def test_infra_error_with_no_checks_is_still_reported(tmp_path: Path) -> None:
    res = {**copy.deepcopy(RESULTS), "verdict": "error", "checks": [],
           "infra_error": "guest did not boot"}
    doc = kcidb.from_run_dir(_run_dir(tmp_path, results=res))
    kcidb.validate(doc)
    (t,) = doc["tests"]
    assert t["status"] == "ERROR" and "did not boot" in t["comment"]


def test_merge_shares_checkouts_and_builds(tmp_path: Path) -> None:
    a = kcidb.from_run_dir(_run_dir(tmp_path, "a"))
    b = kcidb.from_run_dir(_run_dir(tmp_path, "b"))
    fb = kcidb.failed_build("broken", "f" * 64, "mm/vmpressure.c:10: error: expected ';'")
    m = kcidb.merge([a, b, fb])
    kcidb.validate(m)
    assert len(m["checkouts"]) == 2 and len(m["builds"]) == 2  # one kernel + the failed one
    assert len(m["tests"]) == 6 and len({t["id"] for t in m["tests"]}) == 6
    assert [x["status"] for x in m["builds"]] == ["PASS", "FAIL"]


@pytest.mark.parametrize("breakage", [
    lambda d: d["tests"][0].update(status="BROKEN"),
    lambda d: d["builds"][0].update(id="no-origin-prefix"),
    lambda d: d["tests"][0].update(path="has space"),
    lambda d: d.update(version={"major": 4}),
    lambda d: d["checkouts"][0].update(unknown_field=1),
])
def test_validator_rejects_broken_documents(tmp_path: Path, breakage: Any) -> None:
    doc = kcidb.from_run_dir(_run_dir(tmp_path))
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        kcidb.validate(doc)


def test_write_is_atomic(tmp_path: Path) -> None:
    kcidb.write(tmp_path / "k.json", {"version": kcidb.VERSION})
    assert json.loads((tmp_path / "k.json").read_text())["version"]["major"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


# -- per-case tests -------------------------------------------------------------

CASES = [
    {"name": "memcg.test_memcg_subtree_control", "status": "pass", "message": ""},
    {"name": "memcg.test memcg oom (group)", "status": "fail", "message": "exit=1",
     "log": "# not ok 3 test_memcg_oom_group_leaf_events"},
    {"name": "memcg.test_memcg_oom_group", "status": "skip", "message": "SKIP no swap"},
    {"name": "memcg.test_memcg/oom_group", "status": "pass", "message": ""},  # same path
    {"name": "", "status": "error", "message": "TIMEOUT 45 seconds"},
]


def _with_cases() -> dict[str, Any]:
    res = copy.deepcopy(RESULTS)
    res["checks"][0]["cases"] = copy.deepcopy(CASES)
    return res


def test_each_case_is_a_test_under_its_check(tmp_path: Path) -> None:
    doc = kcidb.from_run_dir(_run_dir(tmp_path, results=_with_cases()))
    kcidb.validate(doc)
    cases = [t for t in doc["tests"] if t["path"].count(".") >= 2 or t["path"].endswith(
        ".unnamed")]
    assert [(t["path"], t["status"]) for t in cases] == [
        ("clamping.clamping.memcg.test_memcg_subtree_control", "PASS"),
        ("clamping.clamping.memcg.test_memcg_oom_group", "FAIL"),
        ("clamping.clamping.memcg.test_memcg_oom_group_2", "SKIP"),
        ("clamping.clamping.memcg.test_memcg_oom_group_3", "PASS"),
        ("clamping.clamping.unnamed", "ERROR"),
    ]
    assert len({t["id"] for t in doc["tests"]}) == len(doc["tests"])
    fail = cases[1]
    assert fail["comment"] == "exit=1" and "not ok 3" in fail["log_excerpt"]
    assert fail["misc"]["case"] == "memcg.test memcg oom (group)"
    check = next(t for t in doc["tests"] if t["path"] == "clamping.clamping")
    assert all(t["id"].startswith(check["id"] + ":") for t in cases)
    assert all(t["build_id"] == check["build_id"] for t in cases)


@pytest.mark.parametrize(("name", "parts"), [
    ("suite.sub.case", ["suite", "sub", "case"]),
    ("cgroup: test_kmem", ["cgroup_test_kmem"]),
    ("a..b", ["a", "unnamed", "b"]),
    ("über-test 1", ["ber-test_1"]),
])
def test_case_path_components_use_kcidbs_characters(name: str, parts: list[str]) -> None:
    assert kcidb.case_path(name) == parts


# -- issues and incidents -------------------------------------------------------


def _known_matches(tmp_path: Path) -> list[tuple[Any, Any]]:
    from harness.console import classify_text
    from harness.console.known import load_known, match

    corpus = Path(__file__).resolve().parents[1] / "data" / "console"
    known_file = tmp_path / "known.toml"
    known_file.write_text(
        '[[issue]]\nid = "vmpressure-uaf"\ntitle = "^KASAN: .* in vmpressure_"\n'
        'culprit = "code"\npolicy = "fail"\nurl = "https://lore.kernel.org/r/x@y"\n'
        'version = 3\n'
        '[[issue]]\nid = "netdev.leak"\ntitle = "^unregister_netdevice"\n'
        'culprit = "tool"\npolicy = "warn"\n')
    text = "".join((corpus / n).read_text() for n in (
        "fmt-kasan-mutex-uaf.log", "fmt-netdev-refcount.log", "dbg-warning.log"))
    return match(classify_text(text), load_known(known_file))


def test_issues_and_incidents_are_valid_kcidb(tmp_path: Path) -> None:
    doc = kcidb.from_run_dir(_run_dir(tmp_path))
    build_id = doc["builds"][0]["id"]
    console_test = next(t["id"] for t in doc["tests"] if t["path"] == "clamping.oom_absence")
    pairs = _known_matches(tmp_path)
    targets = [console_test if f.kind == "kasan" else None for f, _ in pairs]
    issues, incidents = kcidb.issues_and_incidents(pairs, build_id, targets)
    doc["issues"], doc["incidents"] = issues, incidents
    kcidb.validate(doc)
    by_id = {i["id"]: i for i in issues}
    assert set(by_id) == {"kpharness:vmpressure-uaf", "kpharness:netdev.leak"}
    uaf = by_id["kpharness:vmpressure-uaf"]
    assert (uaf["version"], uaf["origin"]) == (3, "kpharness")
    assert uaf["culprit"] == {"code": True, "tool": False, "harness": False}
    assert uaf["report_url"] == "https://lore.kernel.org/r/x@y"
    assert uaf["comment"] == "^KASAN: .* in vmpressure_"
    assert "report_url" not in by_id["kpharness:netdev.leak"]
    matched = [f for f, k in pairs if k is not None]
    assert len(incidents) == len(matched) and len(matched) < len(pairs)  # WARNING: unknown
    kasan = [i for i in incidents if i["issue_id"] == "kpharness:vmpressure-uaf"]
    assert [(i["test_id"], i["issue_version"], i["present"]) for i in kasan] == [
        (console_test, 3, True)]
    netdev = [i for i in incidents if i["issue_id"] == "kpharness:netdev.leak"]
    assert netdev and all(i["build_id"] == build_id and "test_id" not in i for i in netdev)
    assert len({i["id"] for i in incidents}) == len(incidents)
    # Same inputs, same ids; a single test id links every incident to it.
    assert kcidb.issues_and_incidents(pairs, build_id, targets) == (issues, incidents)
    _, one = kcidb.issues_and_incidents(pairs, build_id, console_test)
    assert all(i.get("test_id") == console_test for i in one)
    merged = kcidb.merge([doc, doc])
    kcidb.validate(merged)
    assert len(merged["issues"]) == 2 and len(merged["incidents"]) == len(incidents)


def test_no_match_no_issue(tmp_path: Path) -> None:
    pairs = [(f, None) for f, _ in _known_matches(tmp_path)]
    assert kcidb.issues_and_incidents(pairs, "kpharness:build:x") == ([], [])
    with pytest.raises(ValueError, match="test ids"):
        kcidb.issues_and_incidents(pairs, "kpharness:build:x", ["kpharness:test:a"])


@pytest.mark.parametrize("breakage", [
    lambda d: d["issues"][0].update(id="no-origin-prefix"),
    lambda d: d["issues"][0]["culprit"].update(kernel=True),
    lambda d: d["incidents"][0].update(issue_version=-1),
    lambda d: d["incidents"][0].pop("issue_id"),
])
def test_validator_rejects_broken_issues(tmp_path: Path, breakage: Any) -> None:
    doc = kcidb.from_run_dir(_run_dir(tmp_path))
    doc["issues"], doc["incidents"] = kcidb.issues_and_incidents(
        _known_matches(tmp_path), doc["builds"][0]["id"])
    kcidb.validate(doc)
    breakage(doc)
    with pytest.raises(jsonschema.ValidationError):
        kcidb.validate(doc)
