"""BEAT (Idiap): the experiment as BEAT declarations, run by BEAT's own local executor.

`mnistexp run --platform beat` does not train in this process: it generates the BEAT
prefix for the config, runs `beat experiments run --local` from the BEAT virtualenv
($MNISTEXP_BEAT or .venv-beat/bin/beat) and converts BEAT's results into the standard
run record (mnistexp.beat.run).
"""

from __future__ import annotations

import click

from .base import Adapter


class BeatAdapter(Adapter):
    name = "beat"
    description = "BEAT's local executor (needs the BEAT virtualenv; see README)"
    cli_options = [
        click.Option(["--beat-timeout"], type=click.IntRange(min=1), default=None, metavar="SECONDS",
                     help="BEAT only: stop the BEAT run after this many seconds."),
    ]

    def run_external(self, config, results_dir, data_dir, verbose=1, tags=None):
        """The whole run, outside mnistexp's own training loop; returns a runner.RunResult."""
        from mnistexp.beat.run import find_beat, run_with_beat

        find_beat()  # fail before anything is written when BEAT is missing
        result = run_with_beat(config, results_dir, data_dir, verbose=verbose, tags=tags,
                               timeout=self.options.get("beat_timeout"))
        self.messages.append(f"BEAT log: {result.run_dir / 'beat.log'}")
        return result
