"""The report a reviewer reads first: its figures, and the HTML page as a browser shows it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from mnistexp.commands.compare import command as compare
from mnistexp.compare import plots
from mnistexp.compare.analysis import build_report
from mnistexp.compare.load import load_runs
from mnistexp.compare.synthetic import make_record, write_run


def _report(root):
    return build_report(load_runs([root]).runs)


def _figure(root, kind):
    report = _report(root)
    group = report.data["groups"][0]
    rows = [(row["value"], report.runs[(group["fingerprint"], row["value"])]) for row in group["rows"]]
    return plots._figure(plots._pyplot(), group, rows, kind, report.data["by"]), group


@pytest.fixture
def twins(tmp_path):
    """Two platforms that reproduce each other exactly (3 seeds), as Comet does local."""
    for seed, acc in ((1, 0.990), (2, 0.991), (3, 0.992)):
        write_run(tmp_path, make_record("local", seed=seed, test_accuracy=acc))
        write_run(tmp_path, make_record("comet", seed=seed, test_accuracy=acc))
    return tmp_path


def test_accuracy_plot_has_the_target_line_and_dots_for_small_n(twins):
    fig, group = _figure(twins, "accuracy")
    ax = fig.axes[0]
    target = group["expected_test_accuracy"]
    assert target is not None
    assert any(list(line.get_ydata()) == [target, target] for line in ax.lines)
    assert "target" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    # n = 3 per row: a mean ± 95% CI bar per row beside the dots, no box
    assert len(ax.containers) == 2
    assert sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")) >= 6


def test_boxes_from_five_runs_per_row(tmp_path):
    for seed in range(5):
        write_run(tmp_path, make_record("local", seed=seed, test_accuracy=0.99 - seed / 1000))
    fig, _ = _figure(tmp_path, "accuracy")
    ax = fig.axes[0]
    assert ax.containers == []  # no mean/CI bar: a box (median, whiskers) instead
    assert len(ax.lines) >= 5


def test_identical_curves_stay_visible_and_validation_loss_is_beside_training_loss(twins):
    fig, _ = _figure(twins, "learning_curves")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["validation accuracy", "training loss", "validation loss"]
    assert fig.axes[1].get_ylim() == fig.axes[2].get_ylim()  # one loss scale
    for ax in fig.axes:
        comet, local = ax.lines[:2]
        assert list(comet.get_ydata()) == list(local.get_ydata())  # the same numbers...
        assert comet.get_marker() != local.get_marker()  # ...drawn apart
        assert all(a != b for a, b in zip(comet.get_xdata(), local.get_xdata(), strict=True))


# ---------------------------------------------------------------- the page in a browser


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is not installed (apt-get install chromium); the page cannot be rendered")


CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const out = {tables: document.querySelectorAll('table').length, images: imgs.length,
               decoded: imgs.filter(i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100).length,
               width: document.documentElement.scrollWidth, viewport: window.innerWidth};
  const pre = document.createElement('pre'); pre.id = 'check'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _browser(args, timeout=120):
    base = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--disable-dev-shm-usage"]
    return subprocess.run([_chromium(), *base, *args], capture_output=True, text=True, timeout=timeout)


def test_html_report_renders_in_a_browser(twins, tmp_path):
    pytest.importorskip("PIL")
    write_run(twins, make_record("local", seed=9, test_accuracy=None, status="failed", run_id="r-failed-000009"))
    page = tmp_path / "report.html"
    out = CliRunner().invoke(compare, [str(twins), "-o", str(page)])
    assert out.exit_code == 0, out.output
    html = page.read_text()
    # The page itself runs nothing; the check script goes into a copy only.
    assert "<script" not in html
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", CHECK + "</body>"))
    dom = _browser(["--virtual-time-budget=5000", "--window-size=1280,2400", "--dump-dom", probe.as_uri()])
    assert dom.returncode == 0, dom.stderr[-2000:]
    check = json.loads(dom.stdout.split("<pre id=\"check\">", 1)[1].split("</pre>", 1)[0])
    # summary, per-row and per-run tables; 3 figures, every one decoded by the browser
    assert check["tables"] == 3 and check["images"] == 3 and check["decoded"] == 3, check
    assert check["width"] <= check["viewport"] + 1, "the page scrolls sideways"

    shot = tmp_path / "report.png"
    done = _browser([f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()])
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        gray = image.convert("L")
        histogram = gray.histogram()
        # Not blank: a good share of the page is drawn (text, table lines, plots), not all white.
        drawn = sum(histogram[:200]) / (image.size[0] * image.size[1])
        assert 0.01 < drawn < 0.6, drawn
        # The top of the page (title, summary) is not empty either.
        top = gray.crop((0, 0, 1280, 300)).histogram()
        assert sum(top[:128]) > 500
