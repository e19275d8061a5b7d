"""BEAT (Idiap): the experiment as BEAT declarations, run by BEAT's own local executor.

`mnistexp kernel beat` writes the declarations (a BEAT prefix) to platforms/beat/;
`mnistexp run --platform beat` does not train in this process: it generates the prefix
for the config, runs `beat experiments run --local` from the BEAT virtualenv
($MNISTEXP_BEAT or .venv-beat/bin/beat) and turns BEAT's results into the standard run
record (run.py). BEAT pins old dependencies, so it is only ever called as a subprocess.
"""

from __future__ import annotations

import click

from mnistexp.adapters.base import Adapter

from .kernel_command import command as KERNEL_COMMAND  # noqa: N812  (the registry's name)

INSTALL_HINT = ("create the BEAT virtualenv (README, section BEAT) or set "
                "MNISTEXP_BEAT=/path/to/venv/bin/beat")


class BeatAdapter(Adapter):
    name = "beat"
    description = "BEAT's local executor (needs the BEAT virtualenv; see README)"
    trains_here = False
    cli_options = [
        click.Option(["--beat-timeout"], type=click.IntRange(min=1), default=None, metavar="SECONDS",
                     help="BEAT only: stop the BEAT run after this many seconds."),
    ]

    def preflight(self, config, data_dir):
        from .run import find_beat

        super().preflight(config, data_dir)
        find_beat()  # fail before anything is written when BEAT is missing

    def run_elsewhere(self, config, results_dir, data_dir, verbose=1, tags=None):
        from .run import run_with_beat

        run_dir, record = run_with_beat(config, results_dir, data_dir, verbose=verbose, tags=tags,
                                        timeout=self.options.get("beat_timeout"))
        self.messages.append(f"BEAT log: {run_dir / 'beat.log'}")
        return run_dir, record


ADAPTER = BeatAdapter
__all__ = ["ADAPTER", "INSTALL_HINT", "KERNEL_COMMAND", "BeatAdapter"]
