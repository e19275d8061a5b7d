"""`mnistexp compare`: grouping by fingerprint, no pooling across experiments, every format."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mnistexp.commands.compare import command as compare
from mnistexp.compare.synthetic import CHECKSUMS, make_record, write_run

LOCAL = [0.990, 0.991, 0.992]
COMET = [0.985, 0.986, 0.987]
BATCH256 = [0.980, 0.982]


def _run(args):
    return CliRunner().invoke(compare, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def results(tmp_path):
    """Two platforms x 3 seeds of one experiment, and 2 seeds of another (batch 256)."""
    root = tmp_path / "results"
    for i, acc in enumerate(LOCAL):
        write_run(root, make_record("local", seed=i, test_accuracy=acc, tags={"study": "s1"}))
    for i, acc in enumerate(COMET):
        write_run(root, make_record("comet", seed=i, test_accuracy=acc, tensorflow="2.20.0",
                                    gpus=("Tesla T4",), tags={"study": "s2"}))
    for i, acc in enumerate(BATCH256):
        write_run(root, make_record("local", seed=10 + i, test_accuracy=acc, overrides=("train.batch_size=256",)))
    return root


def _json(results, *extra):
    out = _run([results, "--format", "json", *extra])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_runs_are_grouped_by_fingerprint_and_rows_by_platform(results):
    data = _json(results)
    assert data["n_runs"] == 8 and data["n_groups"] == 2
    main, other = data["groups"]
    assert main["n_runs"] == 6 and other["n_runs"] == 2
    assert [r["value"] for r in main["rows"]] == ["comet", "local"]
    local = next(r for r in main["rows"] if r["value"] == "local")
    assert local["n"] == 3 and local["test_accuracy"]["mean"] == pytest.approx(0.991)
    assert local["environment"]["tensorflow"] == "2.21.0"
    comet = next(r for r in main["rows"] if r["value"] == "comet")
    assert comet["environment"] == {"tensorflow": "2.20.0", "hardware": "GPU: Tesla T4"}


def test_different_experiments_are_never_pooled_and_the_difference_is_named(results):
    data = _json(results)
    other = data["groups"][1]
    # The batch-256 runs are local too, but they stay out of the batch-128 local row.
    assert [(r["value"], r["n"]) for r in other["rows"]] == [("local", 2)]
    assert other["rows"][0]["test_accuracy"]["mean"] == pytest.approx(0.981)
    assert data["groups"][0]["rows"][1]["test_accuracy"]["mean"] == pytest.approx(0.991)
    assert any(d.startswith("train.batch_size: 256") and "128" in d for d in other["differs"])
    table = _run([results]).output
    assert "Not the same experiment as the largest group; differs in: train.batch_size: 256" in table


def test_different_data_content_is_a_different_experiment(tmp_path):
    other_data = dict(CHECKSUMS, test_labels="0" * 64)
    write_run(tmp_path, make_record("local", seed=1))
    write_run(tmp_path, make_record("kaggle", seed=1, checksums=other_data))
    data = _json(tmp_path)
    assert data["n_groups"] == 2
    assert any(d.startswith("data checksum test_labels") for d in data["groups"][1]["differs"])


def test_between_platform_difference_with_interval_and_verdict(results):
    c = _json(results)["groups"][0]["comparisons"]
    assert len(c) == 1
    c = c[0]
    assert (c["a"], c["b"]) == ("comet", "local")
    assert c["diff"] == pytest.approx(0.005)
    assert c["ci_low"] > 0 and c["p_value"] < 0.01
    # Both platforms ran seeds 0, 1, 2: paired by seed; every difference is +0.005.
    assert c["test"] == "paired" and c["equivalence"] == "different"
    assert c["verdict"].startswith("different: higher by 0.50 pp")
    assert "local vs comet (paired, 3 seeds): Δ accuracy +0.50 pp" in _run([results]).output


def test_seed_noise_verdict_in_the_table(tmp_path):
    for i, (a, b) in enumerate([(0.990, 0.991), (0.992, 0.989), (0.991, 0.993)]):
        write_run(tmp_path, make_record("local", seed=i, test_accuracy=a))
        write_run(tmp_path, make_record("codalab", seed=i, test_accuracy=b))
    out = _run([tmp_path]).output
    assert "inconclusive: not distinguishable from seed noise" in out
    assert "seeds (the same on both sides) would show equivalence within ±0.10 pp" in out


def test_by_seed_study_alias_and_environment_field(results):
    by_study = _json(results, "--by", "study")
    assert by_study["by"] == "tags.study"
    assert {r["value"]: r["n"] for r in by_study["groups"][0]["rows"]} == {"s1": 3, "s2": 3}
    by_tf = _json(results, "--by", "environment.tensorflow")
    assert {r["value"] for r in by_tf["groups"][0]["rows"]} == {"2.20.0", "2.21.0"}
    by_seed = _json(results, "--by", "seed")
    assert [r["value"] for r in by_seed["groups"][0]["rows"]] == ["0", "1", "2"]
    notes = [c["verdict"] for c in by_seed["groups"][0]["comparisons"]]
    assert notes and all(v == "n too small to say anything (need at least 2 runs on each side, have 2 and 2)"
                         or "differs" in v or "noise" in v for v in notes)


def test_filter_and_sort(results):
    data = _json(results, "--filter", "platform=local", "--sort", "-test_accuracy")
    assert [g["n_runs"] for g in data["groups"]] == [3, 2]
    data = _json(results, "--filter", "platform=local,comet", "--filter", "train.batch_size=128")
    assert data["n_groups"] == 1 and data["n_runs"] == 6
    rows = _json(results, "--sort", "-test_accuracy")["groups"][0]["rows"]
    assert [r["value"] for r in rows] == ["local", "comet"]
    rows = _json(results, "--sort", "test_accuracy")["groups"][0]["rows"]
    assert [r["value"] for r in rows] == ["comet", "local"]


def test_filter_matching_nothing_and_bad_options_are_one_line_errors(results):
    out = _run([results, "--filter", "platform=beat"])
    assert out.exit_code == 1 and "no run matches --filter platform=beat" in out.output
    out = _run([results, "--filter", "platform"])
    assert out.exit_code == 2 and "must look like FIELD=VALUE" in out.output
    out = _run([results, "--sort", "colour"])
    assert out.exit_code == 2 and "--sort 'colour' is not one of" in out.output
    out = _run([results, "-o", str(results / "report.xyz")])
    assert out.exit_code == 2 and "cannot tell the format" in out.output


def test_csv_output_parses_back(results, tmp_path):
    out = tmp_path / "report.csv"
    assert _run([results, "-o", out]).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 3
    local = next(r for r in rows if r["value"] == "local" and r["n"] == "3")
    assert float(local["test_accuracy_mean"]) == pytest.approx(0.991)
    assert float(local["test_accuracy_std"]) == pytest.approx(0.001)
    assert local["by"] == "platform" and len(local["fingerprint"]) == 16


def test_markdown_output(results):
    out = _run([results, "--format", "markdown"])
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert any(line.startswith("| platform | n | test acc mean ± std |") for line in lines)
    assert any(line.startswith("| local | 3 | 0.9910 ± 0.0010 |") for line in lines)
    assert sum(line.startswith("## canonical · mnist") for line in lines) == 2


def test_html_report_is_self_contained_with_table_and_images(results, tmp_path):
    out = tmp_path / "report.html"
    res = _run([results, "-o", out])
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<table class='summary'>") == 2
    assert "<td>0.9910 ± 0.0010</td>" in page
    assert "<script" not in page
    assert page.count("src='data:image/png;base64,") == 6  # 3 figures x 2 experiment groups
    assert "http" not in page.replace("https://", "")  # nothing fetched from elsewhere


def test_plots_folder_gets_pngs(results, tmp_path):
    res = _run([results, "--plots", tmp_path / "plots", "--format", "csv"])
    assert res.exit_code == 0
    pngs = sorted((tmp_path / "plots").glob("*.png"))
    assert len(pngs) == 6
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_cross_validation_folds_are_summarized(tmp_path):
    write_run(tmp_path, make_record("openml", seed=1, test_accuracy=0.99, folds=[0.98, 0.99, 1.0]))
    write_run(tmp_path, make_record("openml", seed=2, test_accuracy=0.99, folds=[0.99, 0.99, 0.99]))
    row = _json(tmp_path)["groups"][0]["rows"][0]
    assert row["folds"]["n"] == 6 and row["folds"]["mean"] == pytest.approx(0.99)
    assert "folds mean ± std" in _run([tmp_path]).output


def test_failed_runs_and_missing_fields_are_reported_not_pooled(tmp_path):
    write_run(tmp_path, make_record("local", seed=1, test_accuracy=0.99))
    write_run(tmp_path, make_record("local", seed=2, test_accuracy=0.98))
    failed = make_record("local", seed=3, test_accuracy=None, status="failed")
    write_run(tmp_path, failed)
    bare = make_record("local", seed=4, test_accuracy=0.97)
    del bare["throughput"]
    write_run(tmp_path, bare)
    group = _json(tmp_path)["groups"][0]
    assert group["n_runs"] == 4 and group["n_used"] == 3
    assert group["rows"][0]["test_accuracy"]["mean"] == pytest.approx(0.98)
    assert any("1 run(s) not completed" in n and "failed: 1" in n for n in group["notes"])
    assert "1 of 3 runs lack throughput.train_images_per_s" in group["notes"]


def test_compare_does_not_import_tensorflow(results):
    code = (
        "import sys; from click.testing import CliRunner; import mnistexp.cli as c; "
        f"r = CliRunner().invoke(c.cli, ['compare', {str(results)!r}]); "
        "assert r.exit_code == 0, r.output; assert 'tensorflow' not in sys.modules, 'TF imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_commands_are_registered():
    from mnistexp.cli import cli

    out = CliRunner().invoke(cli, ["--help"])
    assert "compare" in out.output and "diff" in out.output


# ---------------------------------------------------------------- hostile record text

CSV_CASES = ["=HYPERLINK(\"http://x.invalid\",\"click\")", "+SUM(1,2)", "-2+3", "@cmd", "\tTAB", "\rCR", "-0.5"]


def test_csv_neutralises_formula_cells_but_keeps_numbers(tmp_path):
    for i, value in enumerate(CSV_CASES):
        for seed in (1, 2):
            write_run(tmp_path, make_record("local", seed=seed, test_accuracy=0.99 - seed / 1000,
                                            run_id=f"r{i}-{seed}", tags={"study": value}))
    out = _run([tmp_path, "--by", "study", "-f", "csv"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output, newline="")))
    values = sorted(r["value"] for r in rows)
    expected = sorted("'" + v if v != "-0.5" else v for v in CSV_CASES)
    assert values == expected
    # Numbers stay numbers, negative ones included: nothing else got a quote.
    assert all(float(r["test_accuracy_mean"]) == pytest.approx(0.9885) for r in rows)
    assert not any(v.startswith("'") for r in rows for k, v in r.items() if k not in ("value",))
    # Other formats show the text as it is.
    assert "=HYPERLINK(" in _run([tmp_path, "--by", "study", "-f", "json"]).output


MARKUP = ["[/]", "[link=https://evil.invalid]x[/link]", "[v2]", "[bold]loud", ":thumbs_up:"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "json", "csv"])
def test_rich_markup_in_record_text_is_printed_literally(tmp_path, fmt):
    for i, text in enumerate(MARKUP):
        for seed in (1, 2):
            write_run(tmp_path, make_record(text, seed=seed, run_id=f"m{i}-{seed}", name=text,
                                            tags={"study": text}))
    out = _run([tmp_path, "-f", fmt])
    assert out.exit_code == 0, out.output
    shown = out.output
    if fmt == "html":
        import html as html_module

        shown = html_module.unescape(shown)
    elif fmt == "markdown":
        shown = shown.replace("\\", "")
    elif fmt == "json":
        shown = json.dumps(json.loads(shown), ensure_ascii=False)
    for text in MARKUP:
        assert text in shown, (text, fmt)
    if fmt == "table":
        assert "\x1b]8;" not in shown  # no hidden terminal hyperlink


def test_markdown_escapes_record_text(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path, make_record("[x](javascript:alert(1))", seed=seed, run_id=f"md-{seed}"))
    page = _run([tmp_path, "-f", "markdown"]).output
    assert "\\[x\\](javascript:alert(1))" in page and "[x](javascript" not in page


# ---------------------------------------------------------------- no completed run, abandoned


@pytest.fixture
def unfinished(tmp_path):
    root = tmp_path / "results"
    write_run(root, make_record("local", seed=1, test_accuracy=None, status="interrupted",
                                run_id="20260101T000000000Z-local-int001"))
    write_run(root, make_record("local", seed=2, test_accuracy=None, status="failed",
                                run_id="20260101T000000000Z-local-fail02"))
    write_run(root, make_record("local", seed=3, test_accuracy=None, status="running",
                                run_id="20260101T000000000Z-local-old003",
                                created_at="2020-01-01T00:00:00.000Z"))
    return root


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "json", "csv"])
def test_experiment_without_completed_runs_still_shows_its_runs(unfinished, fmt):
    out = _run([unfinished, "-f", fmt])
    assert out.exit_code == 0, out.output
    if fmt in ("table", "markdown", "html"):
        for status in ("interrupted", "failed", "abandoned"):
            assert status in out.output, status
        assert "…local-int001" in out.output and "20260101T000000000Z-local-int001" not in out.output
    if fmt == "table":
        assert "no completed run with a test accuracy" in out.output
        assert "started" in out.output and "ago with no heartbeat" in out.output
    if fmt == "json":
        group = json.loads(out.output)["groups"][0]
        assert group["rows"] == [] and group["n_used"] == 0
        assert sorted(r["status"] for r in group["runs"]) == ["abandoned", "failed", "interrupted"]


def test_abandoned_is_counted_in_the_notes(unfinished):
    write_run(unfinished, make_record("local", seed=4, test_accuracy=0.99))
    group = _json(unfinished)["groups"][0]
    assert any("abandoned: 1, failed: 1, interrupted: 1" in n for n in group["notes"])


@pytest.mark.parametrize("err", [errno.EACCES, errno.ENOSPC, errno.EROFS])
def test_plots_to_an_unwritable_folder_is_one_error_line(results, tmp_path, monkeypatch, err):
    import mnistexp.compare.plots as plots

    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "keep.png").write_bytes(b"old")

    def refuse(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(plots.tempfile, "mkstemp", refuse)
    out = CliRunner().invoke(compare, [str(results), "--plots", str(folder), "-f", "csv"])
    assert out.exit_code == 1
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert lines == [f"Error: cannot write plots to {folder} ({os.strerror(err)}); choose another --plots folder"]
    assert sorted(p.name for p in folder.iterdir()) == ["keep.png"]  # nothing half-written, nothing lost


def test_plots_under_a_file_is_one_error_line(results, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = CliRunner().invoke(compare, [str(results), "--plots", str(blocker / "plots")])
    assert out.exit_code == 1 and out.output.startswith(f"Error: cannot write plots to {blocker / 'plots'}")
    assert "Traceback" not in out.output


# ---------------------------------------------------------------- report, margin, demo folder


def test_report_has_summary_readable_names_and_run_table(results):
    page = _run([results, "-f", "markdown"]).output
    head = page.split("## canonical", 1)[0]
    assert "## Summary" in head
    assert "| canonical · mnist | comet, local | 6 of 6 | 0.9885 | local vs comet: different | 0.9910: partly (local) |" \
        in head
    assert "| canonical · mnist · train.batch\\_size=256 | local | 2 of 2 | 0.9810 |" in head
    assert "<sub>experiment fingerprint " in page
    # Run ids shortened from the front: the unique end stays.
    assert "| …local-00000a | 10 | local | completed | 0.9800 | 35.0 |" in page
    assert "| 20260101T000000000Z-local-00000a |" not in page
    assert "Generated " in page and "git commit" in page and "numpy" in page


def test_short_ids_keep_the_unique_end():
    from mnistexp.compare.render import short_ids

    ids = ["20261121T081458084Z-local-bd50c7", "20261121T081512313Z-local-8e6b2b"]
    assert short_ids(ids) == {ids[0]: "…local-bd50c7", ids[1]: "…local-8e6b2b"}
    clash = ["A-20260101-local-abcdef", "B-20260101-local-abcdef"]
    short = short_ids(clash)
    assert len(set(short.values())) == 2 and all(clash[i].endswith(short[clash[i]].lstrip("…")) for i in (0, 1))
    assert short_ids(["short"]) == {"short": "short"}


@pytest.mark.parametrize("given, margin", [("0.002", 0.002), ("0.2pp", 0.002), ("0.5 PP", 0.005)])
def test_margin_option(results, given, margin):
    data = _json(results, "--margin", given)
    assert data["margin"] == pytest.approx(margin)
    assert data["groups"][0]["comparisons"][0]["margin"] == pytest.approx(margin)


@pytest.mark.parametrize("given", ["0", "1.5", "abc", "-0.1pp"])
def test_bad_margin_is_a_usage_error(results, given):
    out = _run([results, "--margin", given])
    assert out.exit_code == 2 and "is not a margin between 0 and 1" in out.output


def test_a_wide_margin_turns_inconclusive_into_equivalent(tmp_path):
    for i, (a, b) in enumerate([(0.990, 0.991), (0.992, 0.989), (0.991, 0.993)]):
        write_run(tmp_path, make_record("local", seed=i, test_accuracy=a))
        write_run(tmp_path, make_record("codalab", seed=i, test_accuracy=b))
    assert _json(tmp_path)["groups"][0]["comparisons"][0]["equivalence"] == "inconclusive"
    assert _json(tmp_path, "--margin", "1pp")["groups"][0]["comparisons"][0]["equivalence"] == "equivalent"


def test_demo_folder_is_read_only_when_named(results):
    demo = results / "examples"
    write_run(demo, make_record("beat", seed=1, test_accuracy=0.5))
    out = _run([results])
    assert "beat" not in out.output and f"Note: {demo} left out (demo runs); name it to compare them" in out.output
    assert _json(results)["n_runs"] == 8
    assert _json(demo)["n_runs"] == 1
    assert _json(results, demo)["n_runs"] == 9


def test_runs_in_different_precision_are_one_experiment_with_a_note(tmp_path):
    for seed, precision in enumerate(["float32", "float32", "mixed_bfloat16"]):
        record = make_record("local", seed=seed)
        record["runtime"]["mixed_precision"] = precision
        write_run(tmp_path, record)
    old = make_record("kaggle", seed=7)
    # a record from before the setting (neither its runtime nor its config has it): it ran float32
    del old["runtime"]["mixed_precision"]
    del old["experiment"]["config"]["runtime"]["mixed_precision"]
    write_run(tmp_path, old)
    data = _json(tmp_path)
    assert data["n_groups"] == 1
    note = ("runs differ in runtime.mixed_precision (float32: 3, mixed_bfloat16: 1); "
            "--by runtime.mixed_precision compares them")
    assert note in data["groups"][0]["notes"]
    split = _json(tmp_path, "--by", "runtime.mixed_precision")["groups"][0]
    assert sorted((r["value"], r["n"]) for r in split["rows"]) == [("(none)", 1), ("float32", 2),
                                                                   ("mixed_bfloat16", 1)]
    assert not any("differ in runtime.mixed_precision" in n for n in split["notes"])
