"""`mnistexp kernel PLATFORM`: generate the self-contained files that run on a platform.

The subcommands are the KERNEL_COMMANDs of the platforms the registry marks `kernel`.
"""

from __future__ import annotations

import click

from mnistexp import adapters


class _PlatformKernels(click.Group):
    def list_commands(self, ctx):
        return adapters.platform_names(kernel=True)

    def get_command(self, ctx, name):
        if name not in adapters.platform_names(kernel=True):
            return None
        return getattr(adapters.load_platform(name), "KERNEL_COMMAND", None)

    def format_commands(self, ctx, formatter):
        rows = [(name, adapters.platforms()[name].description) for name in self.list_commands(ctx)]
        with formatter.section("Platforms"):
            formatter.write_dl(rows)


@click.group("kernel", cls=_PlatformKernels)
def command():
    """Generate platform kernels under platforms/ from config.yaml and experiment/."""
