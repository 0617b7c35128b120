"""Machine: the one object that owns a QEMU guest's whole life.

``with Machine(cfg, run_dir) as vm:`` launches QEMU, streams the serial
console into the console classifier, waits for the init's ready marker,
connects QMP and SSH, and -- whatever happens inside the block, including an
exception, a timeout or Ctrl-C -- shuts QEMU down (QMP ``quit``, then SIGKILL)
and removes its sockets and temp files. The run directory keeps the evidence:
``console.log``, ``qemu-cmdline.txt``, ``qemu-stderr.log``, ``qmp-events.jsonl``.

A guest that does not come up, dies, panics or hangs is an :class:`InfraError`
that names what the console classifier saw, never a failed check.
"""

from __future__ import annotations

import codecs
import logging
import os
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from harness import rundir
from harness.console import ConsoleClassifier, Finding, Severity
from harness.errors import HarnessError, InfraError
from harness.image import READY_PREFIX, RunKeys, combined_initrd, make_run_keys
from harness.paths import runs_root
from harness.proc import die_with_parent
from harness.vm.accel import resolve_accel
from harness.vm.argv import RunPaths, build_argv, firmware
from harness.vm.config import VMConfig
from harness.vm.ports import free_port
from harness.vm.preflight import preflight
from harness.vm.qemu_errors import classify_startup
from harness.vm.qmp import QMP
from harness.vm.ssh import CommandResult, OutputCallback, SSHSession
from harness.vm.swap import make_swap_image

log = logging.getLogger(__name__)

CONSOLE_TAIL_CHARS = 8000
_MAX_SOCK_PATH = 100  # sun_path is 108 bytes; leave room


def _is_fatal(finding: Finding) -> bool:
    return finding.severity is Severity.FATAL


class Deadline:
    """A monotonic deadline, so every wait in a phase shares one budget."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.at = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.at


class _ConsoleTail(threading.Thread):
    """Follows console.log as QEMU writes it, feeding the classifier live."""

    def __init__(self, path: Path, classifier: ConsoleClassifier, marker: str) -> None:
        super().__init__(name="console-tail", daemon=True)
        self.path = path
        self.classifier = classifier
        self.marker = marker
        self.ready = threading.Event()
        self.fatal = threading.Event()
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._tail = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pos = 0

    def tail(self, n: int = CONSOLE_TAIL_CHARS) -> str:
        with self._lock:
            return self._tail[-n:]

    def _poll(self) -> bool:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read(1 << 20)
        except FileNotFoundError:
            return False
        if not data:
            return False
        self._pos += len(data)
        text = self._decoder.decode(data)
        with self._lock:
            self._tail = (self._tail + text)[-4 * CONSOLE_TAIL_CHARS:]
            if not self.ready.is_set() and self.marker in self._tail:
                self.ready.set()
        self._classify(self.classifier.feed(text))
        return True

    def _classify(self, findings: list[Finding]) -> None:
        for f in findings:
            log.log(logging.ERROR if _is_fatal(f) else logging.WARNING,
                    "console: %s (%s)", f.title, f.severity.value)
            if _is_fatal(f):
                self.fatal.set()

    def run(self) -> None:
        while not self._halt.is_set():
            if not self._poll():
                self._halt.wait(0.03)

    def finish(self) -> None:
        """Stop following, read what is left, and flush the classifier."""
        self._halt.set()
        if self.is_alive():
            self.join(2.0)
        while self._poll():
            pass
        self._classify(self.classifier.close())


class Machine:
    """A QEMU guest booted to SSH-ready. Use as a context manager."""

    def __init__(self, cfg: VMConfig, run_dir: Path | None = None) -> None:
        cfg.validate()
        preflight(cfg)
        self.cfg = cfg
        if run_dir is None:
            run_dir = runs_root() / (time.strftime("vm-%Y%m%d-%H%M%S-") + secrets.token_hex(3))
        self.run_dir = Path(run_dir)
        self.accel = ""
        self.ssh_port = 0
        self.events_log: Path | None = None
        self.boot_time: float | None = None
        self.argv: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: QMP | None = None
        self.ssh: SSHSession | None = None
        self.classifier = ConsoleClassifier()
        self._console: _ConsoleTail | None = None
        self._dir_fd: int | None = None
        self._cleanup_files: list[Path] = []
        self._stopped = False
        self._watchdog: threading.Timer | None = None
        self._run_timed_out = False
        self._stderr_file: IO[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------
    def __enter__(self) -> Machine:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Launch and wait for SSH-ready; on any failure tear everything down first."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        """Pre-launch (files, keys, sockets), launch (QEMU, with a port retry), post-launch
        (console, QMP, the ready marker, SSH) -- the three steps of QEMU's python machine."""
        paths, keys, qmp_path, marker = self._pre_launch()
        deadline = Deadline(self.cfg.boot_timeout)
        t0 = time.monotonic()
        self._launch_with_port(paths, marker.removeprefix(READY_PREFIX))
        self._post_launch(paths, keys, qmp_path, marker, deadline)
        self.boot_time = time.monotonic() - t0
        log.info("guest ready in %.2f s (%s, %d MiB RAM, %d MiB swap, ssh port %d)",
                 self.boot_time, self.accel, self.cfg.ram_mib, self.cfg.swap_mib, self.ssh_port)

    def _pre_launch(self) -> tuple[RunPaths, RunKeys, Path, str]:
        """Everything QEMU needs on disk before it starts; returns the QMP path to dial and
        the ready marker the guest will print."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        self.accel = resolve_accel(cfg.accel, Path(cfg.kernel), arch=cfg.arch_record)
        keys = make_run_keys()
        sock = self.run_dir / "qmp.sock"
        qmp_path = sock
        argv_sock = sock
        if len(str(sock)) > _MAX_SOCK_PATH:
            # sun_path holds 108 bytes. QEMU binds the socket relative to its cwd (the run
            # dir) and we reach it through a descriptor of that dir: no temp dir exists
            # for a SIGKILL of the harness to leave behind.
            self._dir_fd = os.open(self.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            qmp_path = Path(f"/proc/self/fd/{self._dir_fd}/qmp.sock")
            argv_sock = Path(sock.name)
        paths = RunPaths.in_dir(self.run_dir, cfg.swap_mib > 0, argv_sock,
                                root=cfg.rootfs_image is not None)
        self.events_log = paths.events_log  # guest virtio-serial events (argv.EVENTS_PORT)
        combined_initrd(Path(cfg.initramfs), keys, self.run_dir)
        self._cleanup_files += [paths.initrd, sock]
        if paths.swap_image is not None:
            make_swap_image(paths.swap_image, cfg.swap_mib)
            self._cleanup_files.append(paths.swap_image)
        if paths.root_overlay is not None and cfg.rootfs_image is not None:
            from harness.image.rootfs import make_overlay

            self._cleanup_files.append(paths.root_overlay)
            make_overlay(Path(cfg.rootfs_image).resolve(), paths.root_overlay)
        return paths, keys, qmp_path, READY_PREFIX + secrets.token_hex(8)

    def _launch_with_port(self, paths: RunPaths, nonce: str) -> None:
        """Start QEMU; if another process took the SSH forward port meanwhile, try another."""
        bios = firmware(self.cfg.arch_record)
        for _attempt in range(3):
            self.ssh_port = free_port()
            self.argv = build_argv(self.cfg, paths, accel=self.accel, ssh_port=self.ssh_port,
                                   nonce=nonce, bios=bios)
            (self.run_dir / "qemu-cmdline.txt").write_text(shlex.join(self.argv) + "\n")
            paths.console_log.unlink(missing_ok=True)
            self._launch()
            time.sleep(0.05)
            if self._qemu_alive() or "hostfwd" not in self._stderr_text():
                break
            log.info("SSH forward port %d was taken; retrying with another", self.ssh_port)
            self._reap()
        else:
            raise self._infra("qemu", "could not set up the SSH port forward")

    def _post_launch(self, paths: RunPaths, keys: RunKeys, qmp_path: Path, marker: str,
                     deadline: Deadline) -> None:
        """Watch the console, dial QMP, wait for the ready marker (stopping early if QEMU
        dies or the kernel panics), then SSH in."""
        cfg = self.cfg
        if cfg.run_timeout is not None:
            self._watchdog = threading.Timer(cfg.run_timeout, self._on_run_timeout)
            self._watchdog.daemon = True
            self._watchdog.start()

        self._console = _ConsoleTail(paths.console_log, self.classifier, marker)
        self._console.start()
        self.qmp = QMP(qmp_path, self.run_dir / "qmp-events.jsonl")
        try:
            self.qmp.connect(time.monotonic() + min(deadline.remaining(), 15.0),
                             self._qemu_alive)
        except InfraError:
            if not self._qemu_alive() and not self._console_text_seen():
                raise self._startup_error() from None
            raise

        while not self._console.ready.is_set():
            if self._console.fatal.is_set():
                time.sleep(0.2)  # let the panic block finish for the report
                raise self._infra("kernel", f"guest crashed during boot: {self._fatal_title()}")
            if not self._qemu_alive():
                if not self._console_text_seen():
                    raise self._startup_error()  # died before the guest ran: QEMU said why
                raise self._infra("qemu", "QEMU exited during boot "
                                  f"(status {self._returncode()}){self._fatal_suffix()}")
            if deadline.expired():
                raise self._infra("boot", f"no ready marker within {cfg.boot_timeout:.0f} s "
                                  f"({self.accel}){self._fatal_suffix()}")
            self._console.ready.wait(0.03)

        self.ssh = SSHSession("127.0.0.1", self.ssh_port, keys.client_key, keys.host_key_line)
        self.ssh.connect(time.monotonic() + max(deadline.remaining(), 10.0), self._qemu_alive)
        try:
            self.qmp.execute("qom-set", {"path": "/machine/peripheral/balloon0",
                                         "property": "guest-stats-polling-interval",
                                         "value": 1})
        except InfraError as exc:
            log.debug("balloon stats polling not enabled: %s", exc)

    def _launch(self) -> None:
        if self._stderr_file is not None:
            self._stderr_file.close()
        self._stderr_file = open(self.run_dir / "qemu-stderr.log", "wb")  # noqa: SIM115
        qemu = self.argv[0]
        if shutil.which(qemu) is None:
            raise InfraError(qemu, f"QEMU not found; install {self.cfg.arch_record.qemu_package}")
        log.debug("launching: %s", shlex.join(self.argv))
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._stderr_file,
            stderr=subprocess.STDOUT, cwd=self.run_dir, close_fds=True,
            start_new_session=True,  # Ctrl-C reaches us, and we decide how QEMU ends
            preexec_fn=die_with_parent(),
        )
        (self.run_dir / "qemu.pid").write_text(f"{self.proc.pid}\n")

    def stop(self) -> None:
        """Shut QEMU down (QMP quit, then SIGKILL) and clean up. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.ssh is not None:
            try:
                self.ssh.close()
            except Exception:  # noqa: BLE001 - teardown must go on
                log.debug("ssh close failed", exc_info=True)
        if self._qemu_alive() and self.qmp is not None:
            try:
                self.qmp.execute("quit", timeout=3.0)
            except InfraError:
                pass
        self._reap(grace=3.0)
        if self.qmp is not None:
            self.qmp.close()
        if self._console is not None:
            self._console.finish()
        if self._stderr_file is not None:
            self._stderr_file.close()
        for f in self._cleanup_files:
            f.unlink(missing_ok=True)
        (self.run_dir / "qemu.pid").unlink(missing_ok=True)
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def _reap(self, grace: float = 0.0) -> None:
        """Wait up to ``grace`` s for QEMU to exit, then SIGKILL and reap it."""
        p = self.proc
        if p is None:
            return
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        if p.poll() is None:
            log.debug("killing QEMU pid %d", p.pid)
            p.kill()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                log.error("QEMU pid %d did not die after SIGKILL", p.pid)

    # -- state and diagnosis --------------------------------------------------
    def _qemu_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def _stderr_text(self) -> str:
        try:
            return (self.run_dir / "qemu-stderr.log").read_text(errors="replace")
        except OSError:
            return ""

    def _on_run_timeout(self) -> None:
        log.error("run timeout (%.0f s) reached: killing QEMU", self.cfg.run_timeout or 0)
        self._run_timed_out = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def _console_text_seen(self) -> bool:
        """True once the guest has written anything to its console."""
        try:
            return (self.run_dir / rundir.CONSOLE).stat().st_size > 0
        except OSError:
            return False

    def _startup_error(self) -> HarnessError:
        """QEMU exited before the guest ran: a UsageError if QEMU blames the user's input."""
        err = classify_startup(self._stderr_text(), kernel=str(self.cfg.kernel),
                               ram_mib=self.cfg.ram_mib, smp=self.cfg.smp,
                               status=self._returncode())
        err.detail = self._infra(err.culprit, err.message).detail
        return err

    def _fatal_title(self) -> str:
        for f in self.console_findings:
            if _is_fatal(f):
                return f.title
        return "unknown fatal error"

    def _fatal_suffix(self) -> str:
        if self._console is not None and self._console.fatal.is_set():
            return f"; console: {self._fatal_title()}"
        if any(e.get("event") == "GUEST_PANICKED" for e in self.qmp_events):
            return "; QMP: GUEST_PANICKED"
        return ""

    def _infra(self, culprit: str, message: str) -> InfraError:
        """An InfraError with the command line, QEMU's stderr and the console tail."""
        tail = self._console.tail() if self._console else ""
        detail = (f"QEMU command line: {shlex.join(self.argv)}\n"
                  f"run dir: {self.run_dir}\n"
                  f"--- QEMU output ---\n{self._stderr_text()[-2000:]}\n"
                  f"--- console tail ---\n{tail}")
        return InfraError(culprit, message, detail)

    def _diagnose(self, what: str, exc: InfraError) -> InfraError:
        """Turn an SSH failure into the most specific InfraError we can name."""
        t_end = time.monotonic() + 3.0
        while time.monotonic() < t_end and self._qemu_alive() and \
                not (self._console and self._console.fatal.is_set()):
            time.sleep(0.05)
        if self._console is not None and not self._qemu_alive():
            time.sleep(0.1)
            while self._console._poll():
                pass
        if self._run_timed_out:
            err = self._infra("vm", f"run timeout of {self.cfg.run_timeout:.0f} s reached "
                              f"during {what}")
        elif self._console is not None and self._console.fatal.is_set():
            err = self._infra("kernel", f"guest crashed during {what}: {self._fatal_title()}")
        elif not self._qemu_alive():
            err = self._infra("qemu", f"QEMU exited (status {self._returncode()}) during "
                              f"{what}{self._fatal_suffix()}")
        else:
            err = self._infra(exc.culprit, exc.message)
            err.detail = exc.detail + "\n" + err.detail
        return err

    def _check_usable(self, what: str) -> SSHSession:
        if self.ssh is None or self._stopped:
            raise InfraError("vm", f"{what}: the VM is not running")
        if self._run_timed_out or not self._qemu_alive():
            raise self._diagnose(what, InfraError("vm", "not running"))
        return self.ssh

    # -- the public API -------------------------------------------------------
    def run(self, command: str, timeout: float | None = None,
            on_output: OutputCallback | None = None, check: bool = False,
            pty: bool = False) -> CommandResult:
        """Run a shell command in the guest. A dead or hung guest -> InfraError.

        ``check=True`` raises InfraError on a non-zero status; meant for setup
        steps whose failure is the rig's fault, not the kernel's. ``pty=True``
        gives the command a terminal (stdio line-buffered, so a program that
        forks does not print its buffer twice; stderr merges into stdout).
        """
        ssh = self._check_usable(f"command {command!r}")
        try:
            r = ssh.run(command, timeout or self.cfg.command_timeout, on_output, get_pty=pty)
        except InfraError as exc:
            raise self._diagnose(f"command {command!r}", exc) from exc
        if check and r.exit_status != 0:
            raise InfraError("guest", f"setup command {command!r} exited {r.exit_status}",
                             r.stdout[-2000:] + r.stderr[-2000:])
        return r

    def put(self, local: Path | str, remote: str) -> None:
        ssh = self._check_usable(f"put {remote}")
        try:
            ssh.put(local, remote)
        except InfraError as exc:
            raise self._diagnose(f"put {remote}", exc) from exc

    def get(self, remote: str, local: Path | str) -> None:
        ssh = self._check_usable(f"get {remote}")
        try:
            ssh.get(remote, local)
        except InfraError as exc:
            raise self._diagnose(f"get {remote}", exc) from exc

    def _qmp(self) -> QMP:
        if self.qmp is None or not self._qemu_alive():
            raise self._diagnose("QMP command", InfraError("qmp", "QEMU is not running"))
        return self.qmp

    def balloon(self, target_mib: int) -> None:
        """Set the balloon target: the guest should shrink to ``target_mib`` MiB."""
        self._qmp().execute("balloon", {"value": target_mib * 1024 * 1024})

    def balloon_stats(self) -> dict[str, int]:
        """The balloon driver's guest memory statistics (works even when SSH stalls)."""
        r = self._qmp().execute("qom-get", {"path": "/machine/peripheral/balloon0",
                                            "property": "guest-stats"})
        stats = r.get("stats", {}) if isinstance(r, dict) else {}
        out = {k: int(v) for k, v in stats.items() if isinstance(v, int | float)}
        if isinstance(r, dict) and "last-update" in r:
            out["last-update"] = int(r["last-update"])
        return out

    def balloon_actual_mib(self) -> int:
        r = self._qmp().execute("query-balloon")
        return int(r["actual"]) // (1024 * 1024)

    def query_status(self) -> str:
        r = self._qmp().execute("query-status")
        return str(r.get("status", "unknown"))

    def wait_for_exit(self, timeout: float) -> int | None:
        """Wait for QEMU to exit by itself (e.g. after a guest panic)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def qmp_events(self) -> list[dict[str, Any]]:
        return list(self.qmp.events) if self.qmp is not None else []

    @property
    def console_findings(self) -> list[Finding]:
        return list(self.classifier.findings)

    def console_text(self) -> str:
        try:
            return (self.run_dir / rundir.CONSOLE).read_text(errors="replace")
        except OSError:
            return ""
