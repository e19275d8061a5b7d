"""The committed demo folder stays readable: what a newcomer tries first after installing."""

import json
from pathlib import Path

from click.testing import CliRunner

from mnistexp.cli import cli
from mnistexp.experiment.record import read_record

EXAMPLES = Path(__file__).resolve().parent.parent / "results" / "examples"


def test_every_example_record_is_valid():
    records = [read_record(path) for path in sorted(EXAMPLES.glob("*/record.json"))]
    assert len(records) >= 12
    assert {r["platform"] for r in records} >= {"local", "comet"}
    assert all(r["status"] == "completed" for r in records)


def test_compare_on_the_examples_groups_platforms_of_one_experiment():
    result = CliRunner().invoke(cli, ["compare", str(EXAMPLES), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    text = json.dumps(report)
    assert "957e59a982cacbe9" in text and "7482fa2850bc557a" in text
    assert "not distinguishable from seed noise" in text


def test_example_records_list_only_files_that_are_there():
    for path in EXAMPLES.glob("*/record.json"):
        for name in read_record(path)["artifacts"].values():
            assert (path.parent / name).is_file(), f"{path.parent.name} lists missing {name}"
