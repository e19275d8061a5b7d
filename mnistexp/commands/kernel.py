"""`mnistexp kernel PLATFORM`: generate the self-contained files that run on a platform."""

from __future__ import annotations

import importlib

import click


@click.group("kernel")
def command():
    """Generate platform kernels under platforms/ from config.yaml and experiment/."""


# Each platform's generator registers its subcommand here with one line:
#   command.add_command(importlib.import_module("mnistexp.commands.kernel_<x>").command)
command.add_command(importlib.import_module("mnistexp.commands.kernel_kaggle").command)
command.add_command(importlib.import_module("mnistexp.commands.kernel_codalab").command)
command.add_command(importlib.import_module("mnistexp.commands.kernel_beat").command)
