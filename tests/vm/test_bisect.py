"""harness bisect end to end: real builds, real boots, a history made from Debian's 6.12.

One repository serves both tests, so they share one work tree and build
directory (one lineage) and the artifact cache (a tree already built is only
booted again):

    base (6.12) - series S1..Sn - H1 - H2 - R - H3            main
                                       \\
                                        R' - X - Xfix - H4     branch "build-break"
                                       \\
                                        Z0 - Z - Z1 - Z2       branch "zero-slow"

H* touch only Documentation; R and R' break the counter clamp (the same change,
so the same tree); X adds a syntax error to mm/vmpressure.c and Xfix removes it.
Test 1 bisects Sn..H3 and must name R. Test 2 bisects H2..H4: git's first pick is
X (the middle), which must be skipped, not blamed; the answer must be R'.

Adaptive repeats (``--metric``, ``--max-runs``): Z clears every /dev/zero read twice, so the
throughput a guest measures (with TCG's run-to-run noise) halves; ``bisect --metric
--threshold 0.75x`` over H2..Z2 must name Z with confidence >= 0.95. A check made flaky on
purpose (a QEMU wrapper marks every third boot of each kernel, and the step fails on a
marked boot) must be reported flaky at H1..H2, not bad. ``check-series -`` (b4's per-patch
check) passes Z1's patch and names X's as not building.

The repository is made without ever writing a work tree (commits built in the
index from the harness's extracted tarball), so it costs one ``git add`` of the
source. Its work tree is therefore "all deleted" -- a dirty tree that the bisect
(``--no-checkout``) must leave exactly as it found it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.kernel.series import Patch, load_series
from harness.kernel.source import resolve_source
from harness.paths import PROJECT_ROOT, cache_root

pytestmark = pytest.mark.vm

SERIES = PROJECT_ROOT / "patches" / "mempressure-shrinker"
BROKEN_CLAMP = PROJECT_ROOT / "patches" / "tests" / "broken-clamp"
DOC = "Documentation/admin-guide/cgroup-v1/memory.rst"
ENV = dict(os.environ, GIT_AUTHOR_NAME="Bisect Test", GIT_AUTHOR_EMAIL="bisect@test",
           GIT_COMMITTER_NAME="Bisect Test", GIT_COMMITTER_EMAIL="bisect@test",
           GIT_AUTHOR_DATE="2024-11-17T00:00:00Z", GIT_COMMITTER_DATE="2024-11-17T00:00:00Z")


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    r = subprocess.run(["git", "-c", "core.fsync=none", "-c", "core.looseCompression=1",
                        "-C", str(repo), *args], input=data, capture_output=True, env=ENV)
    if r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {r.stderr.decode()}")
    return r.stdout.decode().strip()


def _subject(p: Patch) -> str:
    m = re.search(rb"^Subject: (?:\[[^\]]*\] )?(.*)$", p.data, re.MULTILINE)
    return m.group(1).decode() if m else p.name


def _commit_patch(repo: Path, p: Patch, msg: str) -> str:
    git(repo, "apply", "--cached", f"-p{p.strip}", "-", data=p.data)
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD")


def _commit_edit(repo: Path, path: str, edit: Callable[[str], str], msg: str) -> str:
    old = git(repo, "show", f"HEAD:{path}") + "\n"
    new = edit(old)
    assert new != old, f"{msg}: the edit changed nothing in {path}"
    blob = git(repo, "hash-object", "-w", "--stdin", data=new.encode())
    git(repo, "update-index", "--cacheinfo", f"100644,{blob},{path}")
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD")


def _doc_commit(repo: Path, n: int) -> str:
    return _commit_edit(repo, DOC, lambda t: t + f"\n.. bisect test: harmless comment {n}\n",
                        f"Documentation: harmless comment {n}")


def _regress(repo: Path, msg: str) -> str:
    """Break the clamp: patches/tests/broken-clamp if it exists, else our own tiny edit."""
    if (BROKEN_CLAMP / "series").is_file() or BROKEN_CLAMP.is_file():
        patches = load_series(BROKEN_CLAMP)
        for p in patches[:-1]:
            git(repo, "apply", "--cached", f"-p{p.strip}", "-", data=p.data)
        return _commit_patch(repo, patches[-1], msg)
    call = re.compile(r"vmpressure_shrinker_adjust\(\s*sh->chunks,\s*delta\)")

    def unclamped(text: str) -> str:
        if not call.search(text):
            pytest.skip("no broken-clamp series and mm/vmpressure.c has no clamp call to break")
        return call.sub("(u64)((s64)sh->chunks + delta)", text)

    return _commit_edit(repo, "mm/vmpressure.c", unclamped, msg)


SYNTAX_ERROR = "\nint harness_bisect_syntax_error(void) { return 0 }\n"
ZERO_FILE = "drivers/char/mem.c"
ZERO_CLEAR = "\t\tleft = clear_user(buf + cleared, chunk);\n"
ZERO_TWICE = ZERO_CLEAR + "\t\tif (likely(!left))\t/* bisect test: twice the work */\n" \
    "\t" + ZERO_CLEAR


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | Path]]:
    if not (SERIES / "series").is_file():
        pytest.skip(f"{SERIES} is not there yet")
    t0 = time.monotonic()
    base = resolve_source(None).base_dir  # the harness's extracted 6.12 tarball
    assert base is not None
    repo = tmp_path_factory.mktemp("bisect") / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "gc.auto", "0")  # no background repack of 90k loose objects
    # Index-only commits: 'add' reads the extracted tree in place, nothing is copied.
    r = subprocess.run(["git", "-c", "core.fsync=none", "-c", "core.looseCompression=1",
                        f"--git-dir={repo / '.git'}", f"--work-tree={base}", "-C", str(base),
                        "add", "-A", "-f"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    git(repo, "commit", "-q", "-m", "Linux 6.12 (Debian linux-source)")
    h: dict[str, str | Path] = {"repo": repo, "base": git(repo, "rev-parse", "HEAD")}
    for p in load_series(SERIES):
        h["Sn"] = _commit_patch(repo, p, _subject(p))
    h["H1"] = _doc_commit(repo, 1)
    h["H2"] = _doc_commit(repo, 2)
    h["R"] = _regress(repo, "mm: vmpressure: simplify the shrinker counter update")
    h["H3"] = _doc_commit(repo, 3)
    git(repo, "checkout", "-q", "-b", "build-break", str(h["H2"]))
    h["R2"] = _regress(repo, "mm: vmpressure: simplify the shrinker counter update (again)")
    h["X"] = _commit_edit(repo, "mm/vmpressure.c", lambda t: t + SYNTAX_ERROR,
                          "mm: vmpressure: work in progress (does not build)")
    h["Xfix"] = _commit_edit(repo, "mm/vmpressure.c", lambda t: t.replace(SYNTAX_ERROR, ""),
                             "mm: vmpressure: fix the build")
    h["H4"] = _doc_commit(repo, 4)
    # a branch without a checkout (the work tree is empty): ref, HEAD, index
    git(repo, "update-ref", "refs/heads/zero-slow", str(h["H2"]))
    git(repo, "symbolic-ref", "HEAD", "refs/heads/zero-slow")
    git(repo, "read-tree", "zero-slow")
    h["Z0"] = _doc_commit(repo, 5)
    h["Z"] = _commit_edit(repo, ZERO_FILE, lambda t: t.replace(ZERO_CLEAR, ZERO_TWICE),
                          "char: mem: clear each /dev/zero read twice")
    h["Z1"] = _doc_commit(repo, 6)
    h["Z2"] = _doc_commit(repo, 7)
    git(repo, "symbolic-ref", "HEAD", "refs/heads/main")  # back on main, index = main's tree
    git(repo, "read-tree", "main")
    print(f"\nhistory made in {time.monotonic() - t0:.0f}s")
    yield h
    # The repository lives in a temp dir, so its lineage (work tree + build dir, ~3 GB)
    # would never be used again: remove it. Artifacts and ccache stay.
    lineage = cache_root() / "lineages" / resolve_source(repo).lineage
    shutil.rmtree(lineage, ignore_errors=True)
    lineage.with_suffix(".lock").unlink(missing_ok=True)
    shutil.rmtree(repo, ignore_errors=True)  # ~1.5 GB of loose objects; run dirs stay


def _state(repo: Path) -> tuple[str, str, str, str]:
    gitdir = repo / ".git"
    return (git(repo, "symbolic-ref", "HEAD"), git(repo, "rev-parse", "HEAD"),
            git(repo, "status", "--porcelain").count("\n").__str__(),
            " ".join(sorted(p.name for p in gitdir.iterdir() if p.name.startswith("BISECT"))))


def _bisect(repo: Path, good: str, bad: str, run_dir: Path,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object], float]:
    t0 = time.monotonic()
    rc = main(["bisect", "--repo", str(repo), "--good", good, "--bad", bad,
               "--check", "contract", "--accel", os.environ.get("HARNESS_TEST_ACCEL", "tcg"),
               "--run-dir", str(run_dir)])
    wall = time.monotonic() - t0
    out = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{out}\nharness bisect wall time: {wall:.0f}s")
    doc: dict[str, object] = json.loads((run_dir / "results.json").read_text())
    return rc, doc, wall


def test_bisect_names_the_regressing_commit(history: dict[str, str | Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    repo = Path(history["repo"])
    before = _state(repo)
    rc, doc, wall = _bisect(repo, str(history["Sn"]), "main", tmp_path / "run", capsys)
    assert rc == 0, doc
    assert doc["first_bad"]["commit"] == history["R"], doc  # type: ignore[index]
    assert doc["verification"]["ok"], doc["verification"]  # type: ignore[index]
    assert doc["verification"]["parent"] == history["H2"]  # type: ignore[index]
    assert _state(repo) == before
    for name in ("results.json", "summary.txt", "bisect.log", "steps.jsonl"):
        assert (tmp_path / "run" / name).is_file(), name
    assert wall < 20 * 60, f"e2e bisect took {wall:.0f}s"


def test_bisect_skips_a_commit_that_does_not_build(history: dict[str, str | Path],
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    repo = Path(history["repo"])
    before = _state(repo)
    rc, doc, _ = _bisect(repo, str(history["H2"]), "build-break", tmp_path / "run", capsys)
    assert rc == 0, doc
    assert doc["first_bad"]["commit"] == history["R2"], doc  # type: ignore[index]
    steps = {s["target"]: s for s in doc["steps"]}  # type: ignore[attr-defined]
    assert history["X"] in steps, "git bisect did not test the commit that does not build"
    x = steps[history["X"]]
    assert x["verdict"] == "skip", x
    assert "mm/vmpressure.c" in x["attempts"][0]["detail"], x
    assert _state(repo) == before


# --- adaptive repeats: a metric bisect, a flaky check, b4's per-patch check ------------------

ACCEL = os.environ.get("HARNESS_TEST_ACCEL", "tcg")
# /dev/zero's read throughput relative to /dev/full's, measured back to back in the guest
# (2 x 4 GiB of 1 MiB reads each, timed by /proc/uptime): /dev/zero's read(2) is read_zero(),
# which Z slows down, /dev/full's is read_iter_zero(), which it does not. The ratio keeps the
# run-to-run noise (about +-10 % under TCG) but not the host's load, which on a shared 2-core
# machine moves the absolute throughput up to 15x from one run to the next.
ZERO_TOML = """
name = "zero-read"
type = "usertest"
[vm]
ram_mib = 128
swap_mib = 0
[[step]]
name = "zero"
run = '''
t() { cut -d" " -f1 /proc/uptime; }
z=0; f=0
for i in 1 2; do
  a=$(t); dd if=/dev/zero of=/dev/null bs=1M count=4096 2>/dev/null; b=$(t)
  dd if=/dev/full of=/dev/null bs=1M count=4096 2>/dev/null; c=$(t)
  z=$(awk -v z=$z -v a=$a -v b=$b 'BEGIN { print z + b - a }')
  f=$(awk -v f=$f -v b=$b -v c=$c 'BEGIN { print f + c - b }')
done
awk -v z=$z -v f=$f 'BEGIN { printf "zero %.1f MiB/s, full %.1f MiB/s, zero/full %.3f\\n", \\
  8192 / z, 8192 / f, f / z }'
'''
timeout_s = 300
tty = false
[[step.extract]]
name = "zero_vs_full"
regex = 'zero/full ([0-9.]+)'
min = 0.01
[[step.extract]]
name = "zero_mib_s"
regex = 'zero ([0-9.]+) MiB/s'
"""

FLAKY_TOML = """
name = "flaky-on-purpose"
type = "usertest"
[vm]
ram_mib = 128
swap_mib = 0
[[step]]
name = "unmarked"
run = "! grep -q harness_flaky=1 /proc/cmdline"
timeout_s = 60
"""

# On PATH before the real QEMU: every third boot of each kernel (by its -kernel path) gets
# harness_flaky=1 on its command line, so a check that fails on a marked boot fails in
# exactly one run of three, whatever the order the pool starts them in.
QEMU_WRAPPER = """#!{python}
import fcntl, os, sys, zlib
args = sys.argv[1:]
if "-kernel" in args and "-append" in args:
    path = os.path.join({counters!r}, "%08x" % zlib.crc32(args[args.index("-kernel") + 1].encode()))
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        n = (int(open(path).read()) if os.path.exists(path) else 0) + 1
        with open(path, "w") as f:
            f.write(str(n))
    if n % 3 == 0:
        args[args.index("-append") + 1] += " harness_flaky=1"
os.execv({real!r}, [{real!r}, *args])
"""


def _adaptive(repo: Path, good: str, bad: str, run_dir: Path, capsys: pytest.CaptureFixture[str],
              *extra: str) -> tuple[int, dict[str, Any], float]:
    t0 = time.monotonic()
    rc = main(["bisect", "--repo", str(repo), "--good", good, "--bad", bad, "--accel", ACCEL,
               "--run-dir", str(run_dir), *extra])
    wall = time.monotonic() - t0
    cap = capsys.readouterr()
    with capsys.disabled():
        print(f"\n{cap.out}\nharness bisect wall time: {wall:.0f}s")
    assert (run_dir / "results.json").is_file(), f"exit {rc}: {cap.err[-3000:]}"
    doc: dict[str, Any] = json.loads((run_dir / "results.json").read_text())
    return rc, doc, wall


def _median_value(step: dict[str, Any]) -> float:
    vals = sorted(a["value"] for a in step["attempts"] if a["value"] is not None)
    return float(vals[len(vals) // 2])


def test_metric_bisect_names_the_commit_that_halves_throughput(
        history: dict[str, str | Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = Path(history["repo"])
    before = _state(repo)
    scen = tmp_path / "zero-read.toml"
    scen.write_text(ZERO_TOML)
    rc, doc, wall = _adaptive(repo, str(history["H2"]), "zero-slow", tmp_path / "run", capsys,
                              "--scenario", str(scen), "--metric", "zero.zero_vs_full",
                              "--threshold", "0.75x")
    assert rc == 0, doc["message"]
    assert doc["status"] == "found" and doc["first_bad"]["commit"] == history["Z"], doc["message"]
    assert doc["confidence"] >= 0.95, doc["message"]
    assert doc["message"].startswith(f"culprit {str(history['Z'])[:12]}, confidence ")
    steps = {s["target"]: s for s in doc["steps"]}
    ratio = _median_value(steps[str(history["Z"])]) / _median_value(steps[str(history["Z0"])])
    assert 0.35 < ratio < 0.7, f"Z / Z0 relative throughput {ratio:.2f}: not a halving"
    values = [a["value"] for a in steps[str(history["H2"])]["attempts"]]
    assert len(values) >= 3 and max(values) > min(values), "no run-to-run noise at all?"
    assert _state(repo) == before
    with capsys.disabled():
        print(f"metric bisect: Z/Z0 {ratio:.2f}, {doc['adaptive']['runs']} runs, "
              f"confidence {doc['confidence']:.4f}, {wall:.0f}s")


def test_a_check_flaky_on_purpose_is_reported_flaky_not_bad(
        history: dict[str, str | Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which("qemu-system-x86_64")
    assert real, "no QEMU"
    bindir, counters = tmp_path / "bin", tmp_path / "boots"
    bindir.mkdir()
    counters.mkdir()
    wrapper = bindir / "qemu-system-x86_64"
    wrapper.write_text(QEMU_WRAPPER.format(python=sys.executable, counters=str(counters),
                                           real=real))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    scen = tmp_path / "flaky.toml"
    scen.write_text(FLAKY_TOML)
    rc, doc, _ = _adaptive(Path(history["repo"]), str(history["H1"]), str(history["H2"]),
                           tmp_path / "run", capsys, "--scenario", str(scen),
                           "--check", "unmarked", "--max-runs", "6")
    boots = sorted(int(p.read_text()) for p in counters.iterdir() if p.suffix != ".lock")
    assert boots == [6, 6], f"the wrapper saw {boots} boots per kernel"
    assert rc == 3, doc
    assert doc["status"] == "flaky" and doc["first_bad"] is None, doc["message"]
    ends = [s for s in doc["steps"] if s["phase"] == "endpoint"]
    assert [s["verdict"] for s in ends] == ["flaky", "flaky"], ends
    for s in ends:
        st = [a["statuses"].get("unmarked") for a in s["attempts"]]
        assert st.count("fail") == 2 and st.count("pass") == 4, st
    assert "good endpoint" in doc["message"]


def _b4_check(repo: Path, sha: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    patch = subprocess.run(["git", "-C", str(repo), "format-patch", "-1", "--stdout", sha],
                           capture_output=True, check=True).stdout
    scen = tmp_path / "zero-read.toml"
    scen.write_text(ZERO_TOML)
    return subprocess.run([sys.executable, "-m", "harness", "check-series", "-", "--scenario",
                           str(scen), "--accel", ACCEL, "--run-dir", str(tmp_path / name)],
                          input=patch.decode(), capture_output=True, text=True, cwd=repo,
                          timeout=3600)


@pytest.mark.extended  # alone, X's failing build is a whole tree's (9.6 min measured)
def test_check_series_from_b4_passes_a_good_patch_and_names_one_that_does_not_build(
        history: dict[str, str | Path], tmp_path: Path) -> None:
    """b4 prep --check runs ``harness check-series -`` in the repository, once per patch
    on stdin: silent on a patch whose commit passes, one ERROR line when it does not build."""
    repo = Path(history["repo"])
    ok = _b4_check(repo, str(history["Z1"]), tmp_path, "ok")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout == ""
    bad = _b4_check(repo, str(history["X"]), tmp_path, "bad")
    assert bad.returncode == 2, bad.stderr[-2000:]
    line, = bad.stdout.splitlines()
    assert line.startswith("ERROR: harness check-series: patch 1 (") and "does not build" in line
    assert "mm/vmpressure.c" in line
