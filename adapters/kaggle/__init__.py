"""Kaggle: the experiment runs on Kaggle's machines as one generated, self-contained kernel.

    kernel.py          generates platforms/kaggle/ (the kernel file and kernel-metadata.json)
    entry.py           the kernel's entry point, embedded in it: runs *on* Kaggle
    kernel_command.py  `mnistexp kernel kaggle`
    api.py             `mnistexp kaggle push / pull` through the official kaggle package
"""

from __future__ import annotations

from .api import command as COMMAND  # noqa: N812  (the registry's names)
from .kernel_command import command as KERNEL_COMMAND  # noqa: N812

INSTALL_HINT = "pip install 'mnistexp[kaggle]' (the kaggle package, plus six which it does not declare)"
__all__ = ["COMMAND", "INSTALL_HINT", "KERNEL_COMMAND"]
