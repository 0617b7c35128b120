"""The guest image: cpio format, template rendering, reproducibility, secrets."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.image import build as image_build
from harness.image import runfiles
from harness.image.cpio import Entry, with_parents, write_newc
from harness.image.runfiles import RunKeys, make_client_key, write_run_cpio

HAVE_HOST_PKGS = all(Path(p).exists() for p in
                     ("/bin/busybox", "/usr/sbin/dropbear", "/usr/lib/openssh/sftp-server"))


def test_render_init_has_every_step() -> None:
    text = image_build.render_init()
    assert text.startswith("#!/bin/sh\n")
    for needle in ("mount -t devtmpfs", "mount -a", "read -r cmdline < /proc/cmdline",
                   "mount -t cgroup -o memory", "/sys/fs/cgroup/memory", "swapon /dev/vda",
                   "10.0.2.15/24", "via 10.0.2.2", "dropbear", "HARNESS-READY-${nonce}",
                   "harness.nonce="):
        assert needle in text, needle
    assert "{{" not in text
    # Each fork+exec costs 10-40 ms under TCG: nothing before the marker runs in $(...).
    before_marker = text.split("HARNESS-READY-")[0].splitlines()
    assert not [ln for ln in before_marker if "$(" in ln and not ln.lstrip().startswith("#")]


def test_fstab_mounts_what_init_relies_on() -> None:
    fstab = image_build.load_manifest()["files"]["/etc/fstab"]
    mounts = {line.split()[1]: line.split()[2] for line in fstab.splitlines() if line.strip()}
    assert mounts == {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/tmp": "tmpfs",
                      "/dev/shm": "tmpfs", "/run": "tmpfs"}


def test_render_init_strict_undefined(tmp_path: Path) -> None:
    (tmp_path / "init.j2").write_text("{{ no_such_var }}")
    with pytest.raises(Exception, match="no_such_var"):
        image_build.render_init(tmp_path)


def test_with_parents_sorted() -> None:
    es = with_parents([Entry.file("/a/b/c", b"x"), Entry.symlink("/z", "a")])
    assert [e.path for e in es] == ["/a", "/a/b", "/a/b/c", "/z"]


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio(1) not installed")
def test_newc_readable_by_cpio(tmp_path: Path) -> None:
    out = tmp_path / "a.cpio"
    with open(out, "wb") as f:
        write_newc(f, [Entry.file("/etc/x", b"hello", 0o600), Entry.symlink("/bin/sh", "busybox"),
                       Entry.chardev("/dev/console", 5, 1)])
    assert out.stat().st_size % 512 == 0
    listing = subprocess.run(["cpio", "-itv"], stdin=open(out, "rb"), capture_output=True,
                             text=True, check=True).stdout
    assert "etc/x" in listing and "bin/sh -> busybox" in listing and "dev/console" in listing
    d = tmp_path / "x"
    d.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "etc/x"], stdin=open(out, "rb"), cwd=d, check=True)
    assert (d / "etc/x").read_bytes() == b"hello"


def test_run_cpio_carries_keys_only(tmp_path: Path) -> None:
    key, pub = make_client_key()
    keys = RunKeys(key, pub, b"HOSTKEY", "ssh-ed25519 AAAA x")
    out = tmp_path / "run.cpio"
    write_run_cpio(keys, out)
    data = out.read_bytes()
    assert pub.encode() in data and b"HOSTKEY" in data
    assert pub.startswith("ssh-ed25519 ")


@pytest.mark.skipif(not HAVE_HOST_PKGS, reason="busybox-static/dropbear/sftp-server missing")
def test_build_image_reproducible_and_cached(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c1"))
    a = image_build.build_image()
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c2"))
    b = image_build.build_image()
    assert a.key == b.key
    assert a.initramfs.read_bytes() == b.initramfs.read_bytes()
    assert a.initramfs == tmp_path / "c1" / "images" / a.key / "initramfs.cpio"
    data = a.initramfs.read_bytes()
    assert b"authorized_keys" not in data or b"ssh-ed25519 AAAA" not in data
    names = {e.path for e in image_build.collect_entries()}
    for p in ("/init", "/bin/busybox", "/bin/sh", "/bin/dropbear", "/usr/lib/sftp-server",
              "/lib64/ld-linux-x86-64.so.2", "/dev/console", "/etc/passwd"):
        assert p in names, p
    extra = tmp_path / "tool"
    extra.write_bytes(b"#!/bin/sh\n")
    c = image_build.build_image(extra_files={"/usr/local/bin/tool": extra})
    assert c.key != a.key


def test_shared_libs_of_static_binary_is_empty() -> None:
    if not Path("/bin/busybox").exists():
        pytest.skip("busybox-static missing")
    assert image_build.shared_libs(Path("/bin/busybox")) == []


@pytest.mark.skipif(shutil.which("dropbearkey") is None, reason="dropbear-bin not installed")
def test_host_key_is_what_dropbear_reads(tmp_path: Path) -> None:
    # dropbearkey -y parses the private key file and prints its public line: the guest's
    # dropbear reads the same format, and the host pins the line we computed.
    blob, line = runfiles.make_host_key()
    path = tmp_path / "hk"
    path.write_bytes(blob)
    out = subprocess.run(["dropbearkey", "-y", "-f", str(path)], capture_output=True,
                         text=True, check=True).stdout
    printed = next(ln for ln in out.splitlines() if ln.startswith("ssh-ed25519 "))
    assert printed.split()[:2] == line.split()[:2]
    blob2, line2 = runfiles.make_host_key()
    assert blob2 != blob and line2 != line  # fresh per run


def test_paramiko_imported_without_invoke_and_invoke_still_importable() -> None:
    # A fresh interpreter: this one may have imported paramiko already.
    code = ("import sys, harness.image, paramiko.config as c; "
            "assert c.invoke is None and 'invoke' not in sys.modules; "
            "import importlib.util as u; "
            "u.find_spec('invoke') is None or __import__('invoke'); print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "ok", r.stderr


def test_a_dynamic_ship_brings_its_libraries_and_a_missing_one_is_named(tmp_path: Path) -> None:
    import subprocess

    import pytest

    from harness.errors import UsageError
    from harness.image.build import with_shared_libs

    (tmp_path / "d.c").write_text("#include <math.h>\n#include <stdlib.h>\n"
                                  "int main(int c, char **v) { return (int)cbrt(atof(v[1])); }\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "d"), str(tmp_path / "d.c"), "-lm"], check=True)
    (tmp_path / "plain.txt").write_text("not an ELF\n")
    out = with_shared_libs({"/root/d": tmp_path / "d", "/root/t": tmp_path / "plain.txt"},
                           "--ship")
    assert any(p.endswith("/libm.so.6") for p in out) and any("ld-linux" in p for p in out)
    assert all(out[p] == Path(p) for p in out if p.startswith("/lib"))
    (tmp_path / "foo.c").write_text("int foo(void) { return 1; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "libfoo.so"),
                    str(tmp_path / "foo.c")], check=True)
    (tmp_path / "m.c").write_text("int foo(void);\nint main(void) { return foo(); }\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "m"), str(tmp_path / "m.c"), f"-L{tmp_path}",
                    "-lfoo", f"-Wl,-rpath,{tmp_path}"], check=True)
    (tmp_path / "libfoo.so").unlink()
    with pytest.raises(UsageError) as ei:
        with_shared_libs({"/opt/x": tmp_path}, "t.toml [[ship]]")
    assert ei.value.culprit == f"t.toml [[ship]] {tmp_path}" and "libfoo.so" in ei.value.message
