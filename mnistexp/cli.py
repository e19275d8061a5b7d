"""The `mnistexp` command: thin click wrappers; the work happens in the modules they call.

Commands are imported only when they run (or when their own --help is asked for), so
`mnistexp --help` imports neither TensorFlow nor numpy nor any platform. Platform
subcommand groups (`mnistexp kaggle ...`) come from the platform registry's table.
"""

from __future__ import annotations

import importlib
import sys

import click

from mnistexp import __version__, adapters

# command name -> (module defining `command`, one-line help shown by `mnistexp --help`)
COMMANDS = {
    "run": ("mnistexp.commands.run", "Train and evaluate the experiment on a platform (or several seeds)."),
    "compare": ("mnistexp.commands.compare", "Compare run records across platforms and seeds."),
    "diff": ("mnistexp.commands.diff", "Show what differs between two runs."),
    "reproduce": ("mnistexp.commands.reproduce", "Rerun a record's exact config and seed; say if it matches."),
    "explore": ("mnistexp.commands.explore", "Search hyperparameters with Optuna (grid, random, TPE)."),
    "evaluate": ("mnistexp.commands.evaluate", "Score saved models (and ensembles) on the test set."),
    "show": ("mnistexp.commands.show", "Plot a run's samples, errors and per-class accuracy."),
    "data": ("mnistexp.commands.data", "Download, inspect and export the data sets."),
    "kernel": ("mnistexp.commands.kernel", "Generate what runs on a platform (kernels, declarations)."),
    "import": ("mnistexp.commands.import_", "Bring run records from anywhere into results/."),
    "upload": ("mnistexp.commands.upload", "Upload a run logged offline to its platform."),
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command is used; errors become one line."""

    def list_commands(self, ctx):
        return [*COMMANDS, *adapters.platform_names(commands=True)]

    def get_command(self, ctx, name):
        if name in COMMANDS:
            module = importlib.import_module(COMMANDS[name][0])
            return module.command
        if name in adapters.platform_names(commands=True):
            return getattr(adapters.load_platform(name), "COMMAND", None)
        return None

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        rows += [(name, adapters.platforms()[name].description)
                 for name in adapters.platform_names(commands=True)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        from mnistexp.errors import user_errors

        try:
            return super().invoke(ctx)
        except user_errors() as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnistexp")
def cli():
    """Run one canonical MNIST experiment on several ML platforms and compare the results.

    \b
      mnistexp run --platform local            train, evaluate, write results/<run-id>/
      mnistexp run --data-dir ../shared/data/mnist --set train.epochs=1
      mnistexp compare results/                compare platforms and seeds
    """


def main() -> None:
    cli(prog_name="mnistexp")


if __name__ == "__main__":
    sys.exit(main())
