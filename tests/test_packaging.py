"""setup.cfg ships every package of the source tree, so a wheel (not only an editable install) works."""

from __future__ import annotations

import configparser

from tests.conftest import REPO


def test_every_source_package_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    mapping = dict(line.split(" = ") for line in config["options"]["package_dir"].strip().splitlines())
    found = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *relative)))
    assert found - listed == set(), "add these to [options] packages in setup.cfg"
