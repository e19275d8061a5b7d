"""The `mnistexp` command: thin click wrappers; the work happens in the modules they call.

Nothing here imports TensorFlow: `mnistexp --help` and `compare` stay fast.
"""

from __future__ import annotations

import importlib
import sys

import click

from mnistexp import __version__

# Each module defines `command` (a click command or group) added to the top-level group.
COMMAND_MODULES = (
    "mnistexp.commands.run",
    "mnistexp.commands.data",
    "mnistexp.commands.evaluate",
    "mnistexp.commands.show",
    "mnistexp.commands.explore",
    "mnistexp.commands.kernel",
    "mnistexp.commands.kaggle",
    "mnistexp.commands.codalab",
    "mnistexp.commands.import_",
    "mnistexp.commands.upload",
    "mnistexp.commands.compare",
    "mnistexp.commands.diff",
)


class FriendlyGroup(click.Group):
    """Turns the project's user errors into one `Error: ...` line and exit code 1."""

    def invoke(self, ctx):
        from mnistexp.errors import user_errors

        try:
            return super().invoke(ctx)
        except user_errors() as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnistexp")
def cli():
    """Run one canonical MNIST experiment on several ML platforms and compare the results.

    \b
      mnistexp run --platform local            train, evaluate, write results/<run-id>/
      mnistexp run --data-dir ../shared/data/mnist --set train.epochs=1
      mnistexp compare results/                compare platforms and seeds
    """


for _name in COMMAND_MODULES:
    cli.add_command(importlib.import_module(_name).command)


def main() -> None:
    cli(prog_name="mnistexp")


if __name__ == "__main__":
    sys.exit(main())
