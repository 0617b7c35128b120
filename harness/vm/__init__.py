"""The guest runtime: QEMU launch, QMP, SSH, acceleration choice.

See docs/interfaces.md ("VM") for the contract.
"""

from harness.proc import pid_alive
from harness.vm.config import VMConfig
from harness.vm.machine import Machine
from harness.vm.ssh import CommandResult

__all__ = ["CommandResult", "Machine", "VMConfig", "pid_alive"]
