"""Free TCP port allocation for the SSH host-forward.

The kernel picks a free ephemeral port when we bind to port 0; we release it
and hand the number to QEMU. Another process could grab it in between, so the
caller (Machine) treats "QEMU could not set up host forwarding" as a reason to
retry with a new port rather than as a failure.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
