"""Pure parts of the build: error extraction, cache keys, request handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel import build
from harness.kernel.build import BuildRequest
from harness.kernel.buildlog import diagnostics, first_build_error

COMPILE_LOG = """  CC      mm/vmscan.o
  CC      mm/vmpressure.o
../../trees/x/mm/vmpressure.c: In function 'vmpressure_work_fn':
../../trees/x/mm/vmpressure.c:187:9: error: implicit declaration of function 'nope' [-Werror]
  187 |         nope();
make[4]: *** [scripts/Makefile.build:229: mm/vmpressure.o] Error 1
"""


def test_first_compile_error_has_file_and_line() -> None:
    assert first_build_error(COMPILE_LOG) == (
        "../../trees/x/mm/vmpressure.c:187",
        "implicit declaration of function 'nope' [-Werror]")


def test_link_and_disk_errors() -> None:
    assert first_build_error("ld: vmlinux.o: in function `f':\n"
                             "x.c:(.text+0x1): undefined reference to `g'\n")[0] == "link"  # type: ignore[index]
    assert first_build_error("cc1: fatal: No space left on device\n") == (
        "disk", "no space left on device during the build")
    assert first_build_error("  CC x.o\n") is None


def test_cache_key_changes_with_each_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "linux"
    src.mkdir()
    (src / "Makefile").write_text("")
    (src / "Kconfig").write_text("")
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_A=y\n")
    req = BuildRequest(source=src, series=(), fragments=(str(frag),))
    k1 = build.resolve_inputs(req).cache_key()
    assert build.resolve_inputs(req).cache_key() == k1  # deterministic
    frag.write_text("CONFIG_A=y\nCONFIG_B=y\n")
    k2 = build.resolve_inputs(req).cache_key()
    req3 = BuildRequest(source=src, series=(), fragments=(str(frag),), base="defconfig")
    k3 = build.resolve_inputs(req3).cache_key()
    (src / "Makefile").write_text("changed\n")
    k4 = build.resolve_inputs(req).cache_key()
    assert len({k1, k2, k3, k4}) == 4


def test_bad_fragment_and_base_fail_before_build(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as ei:
        build.resolve_inputs(BuildRequest(series=(), fragments=("does-not-exist",)))
    assert ei.value.culprit == "does-not-exist"
    with pytest.raises(UsageError) as ei:
        build.resolve_inputs(BuildRequest(series=(), fragments=("guest",), base="nosuchconfig"))
    assert "--base" in ei.value.culprit
    bad = tmp_path / "bad.config"
    bad.write_text("CONFIG_OK=y\nthis is not kconfig\n")
    with pytest.raises(UsageError) as ei:
        build.resolve_inputs(BuildRequest(series=(), fragments=(str(bad),)))
    assert ei.value.culprit == f"{bad}:2"


INTERLEAVED = (Path(__file__).parent.parent / "data" / "buildlog"
               / "interleaved-j2.log").read_text()


def test_diagnostics_come_from_the_whole_log_not_its_tail() -> None:
    """A -j2 log where 40+ objects compile after the error: the tail has no diagnostic."""
    tail = "\n".join(INTERLEAVED.splitlines()[-40:])
    assert "error:" not in tail  # the case the old excerpt got wrong
    d = diagnostics(INTERLEAVED).splitlines()
    assert d[0] == "../src/mm/vmpressure.c:14:1: error: unknown type name 'this'"
    assert "   14 | this is not C;" in d
    assert any("expected '='" in ln for ln in d)
    assert not any(ln.startswith("  CC") for ln in d)
    assert d[-1] == "make[4]: *** [../src/scripts/Makefile.build:229: mm/vmpressure.o] Error 1"


def test_diagnostics_keep_warnings_printed_with_an_error_and_drop_clean_objects() -> None:
    log = ("../src/a.c: In function 'f':\n../src/a.c:3:5: warning: unused 'x'\n"
           "  CC      b.o\n"
           "../src/a.c:4:1: error: boom\n    4 | boom\n      | ^\n"
           "  CC      c.o\n  CC      d.o\n"
           "../src/c.c:9:2: warning: harmless\n  LD      e.o\n"
           "make[3]: *** [Makefile.build:1: a.o] Error 1\n")
    d = diagnostics(log).splitlines()
    assert d[:2] == ["../src/a.c: In function 'f':", "../src/a.c:3:5: warning: unused 'x'"]
    assert "../src/a.c:4:1: error: boom" in d
    assert not any("harmless" in ln for ln in d)
    assert d[-1].endswith("a.o] Error 1")


def test_diagnostics_are_deduplicated() -> None:
    block = ("In file included from ../src/a.c:1:\n../src/h.h:2:1: error: bad\n"
             "    2 | bad\n      | ^\n")
    log = block + "  CC      x.o\n" + block.replace("a.c", "b.c") + "make: *** [x] Error 2\n"
    d = diagnostics(log)
    assert d.count("../src/h.h:2:1: error: bad") == 1


def test_diagnostics_of_a_link_error_and_of_a_log_without_any() -> None:
    log = ("  LD      vmlinux.o\nld: vmlinux.o: in function `f':\n"
           "x.c:(.text+0x1): undefined reference to `g'\n  MODPOST x\n"
           "make[2]: *** [scripts/Makefile.vmlinux:34: vmlinux] Error 1\n")
    d = diagnostics(log).splitlines()
    assert d[:2] == ["ld: vmlinux.o: in function `f':",
                     "x.c:(.text+0x1): undefined reference to `g'"]
    assert d[-1].endswith("vmlinux] Error 1")
    assert diagnostics("  CC a.o\nKilled\n").splitlines()[-1] == "Killed"
