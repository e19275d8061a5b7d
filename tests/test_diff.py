"""`mnistexp diff RUN_A RUN_B`: the config keys, environment fields and metrics that differ."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mnistexp.commands.diff import command as diff
from mnistexp.compare.synthetic import make_record, write_run


def _run(*args):
    return CliRunner().invoke(diff, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def runs(tmp_path):
    a = make_record("local", seed=1, test_accuracy=0.990, run_id="20260101T000000000Z-local-aaaaaa")
    b = make_record("comet", seed=2, test_accuracy=0.985, tensorflow="2.20.0",
                    run_id="20260101T000000000Z-comet-bbbbbb")
    c = make_record("local", seed=1, test_accuracy=0.980, overrides=("train.batch_size=256",),
                    run_id="20260101T000000000Z-local-cccccc")
    return tmp_path, [write_run(tmp_path, r).parent for r in (a, b, c)]


def _json(*args):
    out = _run(*args, "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    return data, {(s["name"], r["key"]): r for s in data["sections"] for r in s["rows"]}


def test_same_experiment_shows_only_what_differs(runs):
    _, (a, b, _) = runs
    data, rows = _json(a, b)
    assert data["same_experiment"] is True
    assert rows[("config", "train.seed")]["a"] == 1 and rows[("config", "train.seed")]["b"] == 2
    assert rows[("environment", "tensorflow")]["b"] == "2.20.0"
    acc = rows[("metrics", "test_accuracy")]
    assert (acc["a"], acc["b"]) == (0.990, 0.985) and acc["delta"] == pytest.approx(-0.005)
    assert ("run", "platform") in rows
    assert ("config", "train.optimizer") not in rows  # the same on both: left out


def test_all_flag_lists_equal_fields_too(runs):
    _, (a, b, _) = runs
    _, rows = _json(a, b, "--all")
    assert rows[("config", "train.optimizer")]["same"] is True


def test_different_experiments_are_named_in_the_table(runs):
    _, (a, _, c) = runs
    out = _run(a, c)
    assert out.exit_code == 0
    assert "Different experiments" in out.output
    line = next(line for line in out.output.splitlines() if "train.batch_size" in line)
    assert "128" in line and "256" in line and "+128" in line


def test_runs_found_by_id_or_unique_part_under_results_dir(runs):
    root, (a, b, _) = runs
    out = _run("local-aaaaaa", "comet-bbbbbb", "--results-dir", root)
    assert out.exit_code == 0 and "Same experiment" in out.output
    assert "A: 20260101T000000000Z-local-aaaaaa" in out.output
    out = _run(a / "record.json", b.name, "--results-dir", root)
    assert out.exit_code == 0


def test_unknown_or_ambiguous_run_is_one_error_line(runs):
    root, (a, _, _) = runs
    out = _run(a, "nope", "--results-dir", root)
    assert out.exit_code == 1 and out.output.startswith("Error: run 'nope' not found")
    out = _run(a, "local", "--results-dir", root)
    assert out.exit_code == 1 and "ambiguous" in out.output


def test_broken_record_is_one_error_line(runs, tmp_path):
    _, (a, _, _) = runs
    bad = tmp_path / "bad" / "record.json"
    bad.parent.mkdir()
    bad.write_text("{")
    out = _run(a, bad)
    assert out.exit_code == 1 and "truncated JSON" in out.output and "Traceback" not in out.output


MARKUP = ["[/]", "[link=https://evil.invalid]x[/link]", "[v2]"]


def test_markup_in_record_text_is_shown_literally(tmp_path):
    paths = [write_run(tmp_path, make_record(text, seed=i, run_id=f"markup-{i}", tags={"study": text})).parent
             for i, text in enumerate(MARKUP)]
    for other in paths[1:]:
        out = _run(paths[0], other)
        assert out.exit_code == 0, out.output
        assert MARKUP[0] in out.output and any(t in out.output for t in MARKUP[1:])
    assert "[link=https://evil.invalid]x[/link]" in _run(paths[0], paths[1]).output
    assert "[v2]" in _run(paths[0], paths[2]).output
    emoji = write_run(tmp_path, make_record(":thumbs_up:", seed=7, run_id="markup-emoji")).parent
    assert ":thumbs_up:" in _run(paths[0], emoji).output


@pytest.mark.parametrize("payload, reason", [
    ('{"schema_version": NaN}', "NaN is not a number JSON allows"),
    ('{"schema_version": Infinity}', "Infinity is not a number JSON allows"),
    ("[" * 50_000 + "]" * 50_000, "nested more than 64 levels deep"),
    ('{"schema_version": 1, "run_id": "x"}', "invalid run record at (top level)"),
])
def test_diff_refuses_what_compare_skips_with_the_same_reason(runs, tmp_path, payload, reason):
    from mnistexp.compare.load import load_runs

    _, (a, _, _) = runs
    bad = tmp_path / "bad" / "record.json"
    bad.parent.mkdir()
    bad.write_text(payload)
    out = _run(a, bad)
    assert out.exit_code == 1 and "Traceback" not in out.output
    lines = out.output.splitlines()
    assert len(lines) == 1 and reason in lines[0]
    assert load_runs([bad.parent]).warnings == [lines[0][len("Error: "):] + "; skipped"]
