"""CodaLab worksheets: the experiment runs as a generated run bundle in a TensorFlow image.

    kernel.py          generates platforms/codalab/ (the kernel, codalab.json, commands.sh)
    entry.py           the kernel's entry point, embedded in it: runs *on* CodaLab
    kernel_command.py  `mnistexp kernel codalab`
    cl.py              `mnistexp codalab submit / pull` through the `cl` CLI (a subprocess:
                       the codalab package cannot share an environment with TensorFlow)
"""

from __future__ import annotations

from .cl import command as COMMAND  # noqa: N812  (the registry's names)
from .kernel_command import command as KERNEL_COMMAND  # noqa: N812

INSTALL_HINT = ("install the CodaLab CLI in its own virtualenv (pipx install --python python3.9 codalab) "
                "and put `cl` on PATH; see README, Run on CodaLab")
__all__ = ["COMMAND", "INSTALL_HINT", "KERNEL_COMMAND"]
