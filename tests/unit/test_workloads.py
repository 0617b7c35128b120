"""build_workload: real static compiles (gcc is present), caching, errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import BuildError
from harness.workloads import build_workload

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))


def _write(root: Path, name: str, files: dict[str, str]) -> None:
    d = root / name
    d.mkdir(parents=True)
    for fname, text in files.items():
        (d / fname).write_text(text)


HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


def test_builds_static_programs_and_reuses_cache(tmp_path: Path) -> None:
    root = tmp_path / "wl"
    _write(root, "demo", {"hello.c": HELLO, "other.c": "int main(void) { return 7; }\n"})
    bins = build_workload("demo", root=root)
    assert set(bins) == {"hello", "other"}
    assert subprocess.run([bins["hello"]], capture_output=True, text=True).stdout == "hello\n"
    assert subprocess.run([bins["other"]]).returncode == 7
    file_out = subprocess.run(["file", bins["hello"]], capture_output=True, text=True)
    if file_out.returncode == 0:
        assert "statically linked" in file_out.stdout
    mtime = bins["hello"].stat().st_mtime_ns
    again = build_workload("demo", root=root)
    assert again == bins
    assert again["hello"].stat().st_mtime_ns == mtime
    # No temporary directories left behind.
    assert [p.name for p in bins["hello"].parent.parent.iterdir()] == [bins["hello"].parent.name]


def test_source_change_rebuilds(tmp_path: Path) -> None:
    root = tmp_path / "wl"
    _write(root, "demo", {"hello.c": HELLO})
    first = build_workload("demo", root=root)
    (root / "demo" / "hello.c").write_text(HELLO.replace("hello", "bye"))
    second = build_workload("demo", root=root)
    assert first["hello"].parent != second["hello"].parent
    assert subprocess.run([second["hello"]], capture_output=True, text=True).stdout == "bye\n"


def test_compile_error_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "wl"
    _write(root, "bad", {"ok.c": HELLO, "broken.c": "int main(void) { return x; }\n"})
    with pytest.raises(BuildError) as info:
        build_workload("bad", root=root)
    err = info.value
    assert err.culprit.endswith("broken.c")
    assert "error:" in err.message and "'x'" in err.message
    assert "broken.c" in err.detail
    # Nothing cached for a failed build.
    cache = tmp_path / "cache" / "workloads"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_warning_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "wl"
    _write(root, "warn", {"w.c": "int main(void) { int unused; return 0; }\n"})
    with pytest.raises(BuildError) as info:
        build_workload("warn", root=root)
    assert info.value.culprit.endswith("w.c")


def test_empty_workload_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "wl" / "empty").mkdir(parents=True)
    with pytest.raises(BuildError):
        build_workload("empty", root=tmp_path / "wl")


def test_project_mempressure_workload_builds() -> None:
    bins = build_workload("mempressure")
    assert set(bins) == {"mpstress", "mpctl"}
    # Usage errors exit 2 without touching any cgroup file.
    assert subprocess.run([bins["mpctl"]], capture_output=True).returncode == 2
    assert subprocess.run([bins["mpstress"], "--bogus"], capture_output=True).returncode == 2
    missing = subprocess.run(
        [bins["mpctl"], "--cgroup", "/nonexistent", "read"], capture_output=True, text=True
    )
    assert missing.returncode == 3
    assert missing.stdout.startswith("OP open err ENOENT ")


def test_mpstress_new_options_are_checked_before_anything_runs() -> None:
    bins = build_workload("mempressure")
    for bad in (["--until-bytes", "0"], ["--until-bytes", "-5"], ["--until-bytes", "1x"],
                ["--events"]):
        r = subprocess.run([bins["mpstress"], *bad], capture_output=True, text=True)
        assert r.returncode == 2, bad
        assert "usage: mpstress" in r.stderr
    usage = subprocess.run([bins["mpstress"], "--help"], capture_output=True, text=True).stderr
    assert "--until-bytes N" in usage and "--events PATH" in usage


def test_mpstress_events_go_to_the_given_path(tmp_path: Path) -> None:
    """--events is opened before registering; without the interface: exit 3, nothing written."""
    bins = build_workload("mempressure")
    events = tmp_path / "events"
    r = subprocess.run([bins["mpstress"], "--cgroup", "/nonexistent", "--events", str(events)],
                       capture_output=True, text=True)
    assert r.returncode == 3
    assert "/nonexistent/memory.pressure_shrinker" in r.stderr and "(ENOENT)" in r.stderr
    assert events.exists() and events.read_text() == ""
    assert r.stdout == ""


def test_mpstress_unopenable_events_path_names_it(tmp_path: Path) -> None:
    bins = build_workload("mempressure")
    bad = tmp_path / "missing-dir" / "events"
    r = subprocess.run([bins["mpstress"], "--cgroup", "/nonexistent", "--events", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert str(bad) in r.stderr and "(ENOENT)" in r.stderr
