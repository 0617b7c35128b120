"""The shipped kselftest scenarios end to end (``harness run --scenario ...``): real kernels
built from the tree under test, their selftests built from the same tree, real QEMU.

Each passes on its kernel, and each has a negative control -- a TEST-ONLY kernel patch in
patches/tests/ -- under which a *named* test case must fail (exit 1, that case "fail" in
results.json and a <failure> in junit.xml), while every other check still holds. The runs are
judged again from their run dirs (``harness judge``) with the same verdict.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.paths import PROJECT_ROOT

pytestmark = pytest.mark.vm

SERIES = str(PROJECT_ROOT / "patches" / "mempressure-shrinker")


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=3600, cwd=PROJECT_ROOT)


def _run(tmp_path: Path, scenario: str, *extra: str) -> tuple[int, dict[str, Any], Path]:
    run_dir = tmp_path / "run"
    r = _harness("run", "--scenario", scenario, "--accel", "tcg", "--run-dir", str(run_dir),
                 *extra)
    assert (run_dir / "results.json").is_file(), r.stderr[-3000:]
    return r.returncode, json.loads((run_dir / "results.json").read_text()), run_dir


def _case(doc: dict[str, Any], check: str, case: str) -> str:
    c = next(c for c in doc["checks"] if c["name"] == check)
    return str(next(x["status"] for x in c["cases"] if x["name"] == case))


def _status(doc: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in doc["checks"]}


def _junit_failures(run_dir: Path) -> set[str]:
    root = ET.parse(run_dir / "junit.xml").getroot()
    return {tc.get("name", "") for tc in root.iter("testcase") if tc.find("failure") is not None}


def _rejudged(run_dir: Path, rc: int) -> None:
    r = _harness("judge", str(run_dir))
    assert r.returncode == rc, r.stderr[-2000:]


REPORT_SH = """#!/bin/sh
echo "KTAP version 1"; echo "1..2"
echo "  KTAP version 1"; echo "  1..2"; echo "  ok 1 alloc"; echo "  ok 2 free # SKIP no swap"
echo "ok 1 suite"
echo "peak ${PEAK:-1234} kB"
echo "${SECOND:-ok} 2 last"
"""

USERTEST = """
name = "ut"
type = "usertest"
[vm]
swap_mib = 0
[[ship]]
src = "files/"
dest = "/opt/ut"
[[step]]
name = "report"
run = "/opt/ut/report.sh"
output = "ktap"
timeout_s = 60
[[step.extract]]
name = "peak_kib"
regex = 'peak (\\d+) kB'
min = 1
max = 2000
[[step]]
name = "slow"
run = "sh -c 'sleep 100; echo never' & sleep 200"
timeout_s = %s
[[step]]
name = "status"
run = "exit 3"
expect_exit = [3]
"""


@pytest.mark.parametrize("env, timeout_s, failing", [
    ("", 150, set()),  # everything holds
    ("SECOND='not ok'", 150, {"report"}),  # a failing KTAP case
    ("PEAK=99999", 150, {"report"}),  # an extracted number out of bounds
    ("", 3, {"slow"}),  # the guest's watchdog kills a step: a failure, not infra
])
def test_usertest_ship_ktap_extract_timeout(kernel: Path, tmp_path: Path, env: str,
                                            timeout_s: int, failing: set[str]) -> None:
    """The schema's parts in a real guest, each with its negative control."""
    (tmp_path / "files").mkdir()
    script = tmp_path / "files" / "report.sh"
    script.write_text(REPORT_SH.replace("#!/bin/sh\n", f"#!/bin/sh\n{env}\n" if env else
                                        "#!/bin/sh\n"))
    script.chmod(0o755)
    toml = tmp_path / "ut.toml"
    toml.write_text(USERTEST % timeout_s)
    if timeout_s > 100:  # the passing variants need not wait for the sleeper
        toml.write_text(toml.read_text().replace("sleep 100; echo never' & sleep 200",
                                                 "sleep 1' & wait"))
    rc, doc, run_dir = _run(tmp_path, str(toml), "--kernel", str(kernel))
    bad = {n for n, st in _status(doc).items() if st != "pass"}
    assert bad == failing, json.dumps(doc["checks"], indent=1)[:3000]
    assert rc == (1 if failing else 0)
    assert _case(doc, "report", "suite.free") == "skip"
    if failing == {"slow"}:
        meta = json.loads((run_dir / "step-slow.json").read_text())
        assert meta["timed_out"] is True and meta["duration_s"] < 60
    _rejudged(run_dir, rc)


MM_CASE = "test_mlock_onfault: VMA marked for lock on fault"
CG_CASE = "test_memcg_swap_max_peak"


def test_mm_selftests_pass(tmp_path: Path) -> None:
    """On the default kernel with the mm target's config merged (the scenario names mm
    programs): madv_populate runs its cases instead of skipping them all."""
    rc, doc, run_dir = _run(tmp_path, "kselftest-mm")
    assert rc == 0, doc
    assert _status(doc) == {"mlock2": "pass", "map-populate": "pass", "mrelease": "pass",
                            "madv-populate": "pass", "console": "pass"}
    assert _case(doc, "mlock2", MM_CASE) == "pass"
    assert _case(doc, "madv-populate", "MADV_POPULATE_READ with PROT_READ") == "pass"
    _rejudged(run_dir, 0)
    from harness.core.request import kernel_request
    from harness.core.spec import load_spec
    from harness.kernel.build import build_kernel

    meta = build_kernel(kernel_request(load_spec("kselftest-mm"))).metadata["kselftest_config"]
    mm = meta["targets"]["mm"]
    assert "CONFIG_USERFAULTFD=y" in mm["options"] and "CONFIG_ADVISE_SYSCALLS=y" in \
        mm["supplement_options"]
    assert mm["m_to_y"] == ["CONFIG_TEST_VMALLOC", "CONFIG_TEST_HMM"]
    assert [m["symbol"] for m in meta["missing"]] == ["CONFIG_TEST_VMALLOC"]


def test_mm_without_config_merge_skips_madv_populate(tmp_path: Path) -> None:
    """Negative control of the merge: the same program with ``merge_config = false`` runs on
    the default kernel, which has no madvise(): every case skips, and the step (which expects
    exit 0, not KSFT_SKIP) fails."""
    toml = tmp_path / "nomerge.toml"
    toml.write_text('extends = "kselftest-mm"\nname = "kselftest-mm-nomerge"\n'
                    "[kselftest]\nmerge_config = false\n")
    rc, doc, run_dir = _run(tmp_path, str(toml), "--check", "madv-populate")
    assert rc == 1, doc
    assert _status(doc)["madv-populate"] == "fail"
    assert "MADV_POPULATE_READ is not available" in (run_dir / "step-madv-populate.out").read_text()
    assert json.loads((run_dir / "step-madv-populate.json").read_text())["exit"] == 4


def test_mm_config_option_missing_without_opt_in_is_exit_2(tmp_path: Path) -> None:
    """CONFIG_TEST_VMALLOC (module-only) cannot be in the kernel: without its line in
    ``config_missing_ok`` the run stops before boot, exit 2, naming the option and why."""
    toml = tmp_path / "strict.toml"
    toml.write_text('extends = "kselftest-mm"\nname = "kselftest-mm-strict"\n'
                    "[kselftest]\nconfig_missing_ok = []\n")
    r = _harness("run", "--scenario", str(toml), "--accel", "tcg", "--run-dir",
                 str(tmp_path / "run"))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "CONFIG_TEST_VMALLOC" in r.stderr and "module-only" in r.stderr, r.stderr[-3000:]
    assert not (tmp_path / "run" / "console.log").exists()


def test_mm_control_mlock_onfault_ignored_fails_the_named_case(tmp_path: Path) -> None:
    rc, doc, run_dir = _run(tmp_path, "kselftest-mm", "--patches", SERIES, "--patches",
                            str(PROJECT_ROOT / "patches/tests/mlock-onfault-ignored"))
    assert rc == 1, doc
    st = _status(doc)
    assert st["mlock2"] == "fail" and st["map-populate"] == "pass" and st["console"] == "pass"
    assert _case(doc, "mlock2", MM_CASE) == "fail"
    assert _case(doc, "mlock2", "test_mlock_lock: Locked #1") == "pass"  # only ONFAULT broke
    assert any(MM_CASE in n for n in _junit_failures(run_dir))
    _rejudged(run_dir, 1)


def test_cgroup_memory_selftests_pass(tmp_path: Path) -> None:
    rc, doc, run_dir = _run(tmp_path, "kselftest-cgroup-memory")
    assert rc == 0, json.dumps(doc["checks"], indent=1)[:4000]
    assert _status(doc) == {"scratch-fs": "pass", "memcontrol": "pass", "console": "pass"}
    assert _case(doc, "memcontrol", CG_CASE) == "pass"
    _rejudged(run_dir, 0)


def test_cgroup_control_swap_max_ignored_fails_the_named_case(tmp_path: Path) -> None:
    rc, doc, run_dir = _run(tmp_path, "kselftest-cgroup-memory", "--patches", SERIES,
                            "--patches",
                            str(PROJECT_ROOT / "patches/tests/memcg-swap-max-ignored"))
    assert rc == 1, doc
    assert _status(doc)["memcontrol"] == "fail"
    assert _case(doc, "memcontrol", CG_CASE) == "fail"
    assert _case(doc, "memcontrol", "test_memcg_subtree_control") == "pass"
    assert any(CG_CASE in n for n in _junit_failures(run_dir))


def test_stress_ng_runs_on_the_debian_rootfs(tmp_path: Path) -> None:
    """A second workload from outside, TOML only: Debian's stress-ng in the debian rootfs,
    under a memcg limit, metrics extracted, console checked. Its negative control: the same
    scenario on the initramfs, which has no stress-ng (exit 127, every stressor fails)."""
    rc, doc, run_dir = _run(tmp_path, "stress-ng-memory")
    checks = {c["name"]: c for c in doc["checks"]}
    assert rc == 0, {n: c["summary"] for n, c in checks.items()}
    for name in ("vm", "bigheap", "mmap"):
        assert checks[name]["measurements"][f"{name}_bogo_ops"] >= 1
    assert checks["console"]["status"] == "pass"
    assert "rootfs.qcow2" not in (run_dir / "qemu-cmdline.txt").read_text()
    assert "root.qcow2" in (run_dir / "qemu-cmdline.txt").read_text()
    text = (PROJECT_ROOT / "scenarios" / "stress-ng-memory.toml").read_text()
    busybox = tmp_path / "busybox.toml"
    busybox.write_text(text.replace('rootfs = "debian"\n', 'rootfs = "initramfs"\n')
                       .replace('packages = ["stress-ng", "python3"]\n', ""))
    assert 'rootfs = "initramfs"' in busybox.read_text()
    rc, doc, run_dir = _run(tmp_path / "u", str(busybox))
    st = _status(doc)
    assert rc == 1 and st["vm"] == st["bigheap"] == st["mmap"] == "fail", st
    assert json.loads((run_dir / "step-vm.json").read_text())["exit"] == 127


#: The skips kselftest-mm-all may show (step -> how many cases), each for a reason that is not
#: a missing kernel option (the scenario's comments give them): a new skip fails the test.
MM_ALL_SKIPS = {"cow": 1, "hmm": 26, "migration": 6, "mseal": 2, "split-huge-page": 9,
                "ksm-numa": 1, "mdwe": 4}


@pytest.mark.extended
def test_mm_all_selftests_with_their_config(tmp_path: Path) -> None:
    """Every mm program that builds, with the mm config merged: all steps pass, and the only
    skipped cases are the listed ones (topology, CPU features, test devices)."""
    rc, doc, run_dir = _run(tmp_path, "kselftest-mm-all")
    bad = {n: s for n, s in _status(doc).items() if s != "pass"}
    assert rc == 0 and not bad, bad
    skips = {c["name"]: sum(1 for x in c.get("cases", []) if x["status"] == "skip")
             for c in doc["checks"]}
    assert {n: k for n, k in skips.items() if k} == MM_ALL_SKIPS
    assert "MADV_POPULATE_READ is not available" not in (
        run_dir / "step-madv-populate.out").read_text()
