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


def test_comet_reproduces_local_on_every_seed_without_xla():
    result = CliRunner().invoke(cli, ["compare", str(EXAMPLES), "--filter", "runtime.jit_compile=false",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.output)["groups"][0]["comparisons"][0]
    assert comparison["test"] == "paired" and comparison["equivalence"] == "equivalent"
    assert comparison["verdict"] == "equivalent: identical on every seed (3 seeds)"


def test_the_results_folder_alone_leaves_the_demo_out(tmp_path):
    import shutil

    demo = shutil.copytree(EXAMPLES, tmp_path / "results" / "examples")
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "results")])
    assert result.exit_code == 1  # nothing else there
    assert result.output == (f"Error: no readable run records under {tmp_path / 'results'}; "
                             f"{demo} left out (demo runs); name it to compare them\n")
