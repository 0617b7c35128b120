"""How a step runs in the guest: the shell text around the user's command (pure).

The guest enforces ``timeout_s`` itself, so a step that overruns is a verdict ("did not
finish within timeout_s"), not a hung SSH session: the command runs in its own session
(``setsid``) so that a watchdog can kill its whole process group, and the watchdog leaves a
marker file the harness reads back. The command's ``oom_score_adj`` is reset to 0: the
guest's init protects dropbear and its sessions from the OOM killer with -1000, which a test
that provokes OOM kills (memcg selftests) must not inherit. stdin is /dev/null.
"""

from __future__ import annotations

import shlex

MARKER_DIR = "/run/harness-steps"
SSH_GRACE_S = 60.0  # SSH's own timeout = step timeout + this: only a hung guest reaches it


def marker(name: str) -> str:
    return f"{MARKER_DIR}/{name}.timed-out"


def step_command(name: str, run: str, timeout_s: float) -> str:
    """The shell command that runs ``run`` under a guest-side watchdog of ``timeout_s``."""
    inner = f"echo 0 > /proc/self/oom_score_adj; exec sh -c {shlex.quote(run)}"
    m = shlex.quote(marker(name))
    secs = max(1, int(timeout_s + 0.999))
    return (
        f"mkdir -p {MARKER_DIR}; rm -f {m}; "
        f"setsid sh -c {shlex.quote(inner)} </dev/null & p=$!; "
        f"( sleep {secs}; kill -0 $p 2>/dev/null && touch {m} && kill -KILL -$p ) "
        f"</dev/null >/dev/null 2>&1 & w=$!; "
        f"wait $p; rc=$?; kill $w 2>/dev/null; exit $rc"
    )


def timed_out_query(name: str) -> str:
    """Prints "yes" iff the watchdog fired for step ``name``."""
    return f"test -e {shlex.quote(marker(name))} && echo yes || echo no"
