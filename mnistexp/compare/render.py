"""Render a comparison report: terminal table (rich), Markdown, CSV, JSON, HTML."""

from __future__ import annotations

import csv
import html
import io
import json

from mnistexp.compare.load import field_text
from mnistexp.compare.stats import pp

FORMATS = ("table", "markdown", "csv", "json", "html")
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".csv": "csv", ".json": "json",
                  ".html": "html", ".htm": "html", ".txt": "table"}
HEADERS = ("n", "test acc mean ± std", "95% CI", "best / worst", "test loss mean ± std",
           "train s (median)", "s/epoch", "images/s", "epochs", "TF", "hardware")
TEXT_COLUMNS = ("TF", "hardware")
# Dropped in this order when a terminal is too narrow for the whole table.
NARROW_DROP = ("best / worst", "s/epoch", "images/s", "epochs", "train s (median)", "test loss mean ± std")
TERMINAL_HEADERS = {"test acc mean ± std": "accuracy ± std", "95% CI": "accuracy 95% CI",
                    "test loss mean ± std": "loss ± std", "train s (median)": "train s"}
CSV_COLUMNS = (
    "fingerprint", "experiment", "by", "value", "n",
    "test_accuracy_mean", "test_accuracy_std", "test_accuracy_ci_low", "test_accuracy_ci_high",
    "test_accuracy_min", "test_accuracy_max", "test_loss_mean", "test_loss_std",
    "test_loss_ci_low", "test_loss_ci_high", "train_s_median", "epoch_s_median",
    "images_per_s_median", "epochs_run", "folds_n", "folds_mean", "folds_std",
    "tensorflow", "hardware", "best_run", "differs", "notes",
)


# ---------------------------------------------------------------- cells


def _f(value, digits=4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def mean_std(s, digits=4) -> str:
    if s is None:
        return "–"
    return _f(s["mean"], digits) + ("" if s["std"] is None else f" ± {_f(s['std'], digits)}")


def ci(s, digits=4) -> str:
    if s is None or s["ci_low"] is None:
        return "–"
    return f"[{_f(s['ci_low'], digits)}, {_f(s['ci_high'], digits)}]"


def row_cells(row: dict, with_folds: bool) -> list[str]:
    acc, env = row["test_accuracy"], row["environment"]
    speed = row["images_per_s_median"]
    cells = [
        str(row["n"]), mean_std(acc), ci(acc),
        "–" if acc is None else f"{_f(acc['max'])}/{_f(acc['min'])}",
        mean_std(row["test_loss"]), _f(row["train_s_median"], 1), _f(row["epoch_s_median"], 2),
        "–" if speed is None else f"{speed:,.0f}", row["epochs_run"] or "–",
        env["tensorflow"] or "–", env["hardware"] or "–",
    ]
    if with_folds:
        folds = row["folds"]
        cells.append("–" if folds is None else f"{mean_std(folds)} ({folds['n']} folds)")
    return cells


def headers(group: dict, by: str) -> list[str]:
    out = [by, *HEADERS]
    if any(r["folds"] for r in group["rows"]):
        out.append("folds mean ± std")
    return out


def group_title(group: dict, by: str) -> str:
    used = group["n_used"]
    runs = f"{group['n_runs']} runs" + ("" if used == group["n_runs"] else f", {used} used")
    return f"{group.get('label') or group['name']}: {runs}, by {by}"


def comparison_text(c: dict, esc=str) -> str:
    head = f"{esc(c['b'])} vs {esc(c['a'])}"
    if c["diff"] is None:
        return f"{head}: {c['verdict']}"
    test = f"paired, {c['n_pairs']} seeds" if c.get("test") == "paired" else "Welch"
    if c["ci_low"] is None:
        return f"{head} ({test}): Δ accuracy {pp(c['diff'])} pp → {c['verdict']}"
    # The p-value is in the verdict where it matters (different / inconclusive).
    text = (f"{head} ({test}): Δ accuracy {pp(c['diff'])} pp, 95% CI [{pp(c['ci_low'])}, {pp(c['ci_high'])}] pp"
            f" → {c['verdict']}")
    if c.get("ci90_low") is not None and c.get("margin") is not None:
        p_eq = c.get("p_equivalence")
        text += (f"; TOST ±{c['margin'] * 100:.2f} pp: 90% CI [{pp(c['ci90_low'])}, {pp(c['ci90_high'])}] pp"
                 + (f", p = {p_eq:.3f}" if p_eq is not None else ""))
    return text


def group_lines(group: dict, esc=str) -> list[str]:
    """The lines under a group's table: what sets it apart, comparisons, notes.
    `esc` escapes record text for the output format (Markdown)."""
    lines = []
    if group["differs"]:
        lines.append("Not the same experiment as the largest group; differs in: "
                     + "; ".join(esc(d) for d in group["differs"]))
    for c in group["comparisons"]:
        lines.append(comparison_text(c, esc))
        if c.get("power_text") and c["equivalence"] != "equivalent":
            lines.append(f"{esc(c['b'])} vs {esc(c['a'])} {c['power_text']}")
    target = group.get("expected_test_accuracy")
    if target is not None and group["rows"]:
        met = group["summary"]["target_met"]
        lines.append(f"Target (expected_test_accuracy {target:.4f}) met: {esc(met)}")
    lines += [f"Note: {esc(n)}" for n in group["notes"]]
    return lines


def short_ids(ids, min_len: int = 12) -> dict:
    """Run ids shortened from the front, keeping the unique end: …local-bd50c7.

    One length for all (the shortest that keeps them apart), widened per id to the start of
    the word it would cut (r-failed-000009 -> …failed-000009, not …ailed-000009).
    """
    ids = list(dict.fromkeys(ids))
    longest = max((len(i) for i in ids), default=0)
    length = min_len
    while length < longest and len({i[-length:] for i in ids}) < len(ids):
        length += 4
    out = {}
    for i in ids:
        if len(i) <= length:
            out[i] = i
            continue
        start = len(i) - length
        cut = i.rfind("-", 0, start + 1)
        start = cut + 1 if cut >= 0 and start - cut <= 8 else start
        out[i] = "…" + i[start:] if start > 0 else i
    return out


def run_cells(run: dict, short: dict) -> list[str]:
    status = run["status"] + ("" if run["used"] or run["status"] != "completed" else " (no accuracy)")
    return [short.get(run["run_id"], run["run_id"]), field_text(run["seed"]), str(run["platform"]), status,
            _f(run["test_accuracy"]), _f(run["train_s"], 1)]


RUN_HEADERS = ("run", "seed", "platform", "status", "test accuracy", "train s")
MAX_RUN_ROWS = 200  # per group in HTML/Markdown; the JSON lists every run
MAX_TERMINAL_LEFT_OUT = 10


def summary_cells(group: dict) -> list[str]:
    s = group["summary"]
    target = group.get("expected_test_accuracy")
    return [group.get("label") or group["name"], ", ".join(s["values"]) or "(no completed run)",
            f"{s['n']} of {group['n_runs']}", _f(s["mean_accuracy"]),
            "; ".join(s["verdicts"]) or "–",
            "no target" if target is None else f"{_f(target)}: {s['target_met'] or '–'}"]


SUMMARY_HEADERS = ("experiment", "rows", "runs used", "mean accuracy", "verdicts", "target met?")


def report_meta() -> dict:
    """The report's foot: when, from which commit of mnistexp, with which versions."""
    import datetime as dt
    import platform
    from importlib import metadata

    from mnistexp.experiment.record import git_commit
    from mnistexp.paths import PROJECT_DIR

    versions = {"python": platform.python_version()}
    for dist in ("mnistexp", "numpy", "scipy", "matplotlib", "rich"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "git_commit": git_commit(PROJECT_DIR) if (PROJECT_DIR / ".git").exists() else None,
            "versions": versions}


def foot_text(data: dict) -> str:
    meta = data.get("generated") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items() if v)
    commit = meta.get("git_commit")
    tf = sorted({r["environment"]["tensorflow"] for g in data["groups"] for r in g["rows"]
                 if r["environment"]["tensorflow"]})
    return (f"Generated {meta.get('generated_at', '?')} from mnistexp git commit "
            f"{commit[:12] if commit else '(not a git checkout)'}; {versions}. "
            f"Runs recorded with TensorFlow {', '.join(tf) or '?'}.")


# ---------------------------------------------------------------- formats


def to_table(data: dict, console) -> None:
    """Narrow enough for a terminal: the environment goes on lines under each table.

    Record text goes in as rich Text, never as markup: a platform named `[/]` or
    `[link=...]` is printed as written.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    for group in data["groups"]:
        with_folds = any(r["folds"] for r in group["rows"])
        console.print(Text(group_title(group, data["by"]), style="bold"))
        console.print(Text(f"  experiment {group['fingerprint']}", style="dim"))
        if group["rows"]:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
            names = headers(group, data["by"])
            keep = [i for i, name in enumerate(names) if name not in TEXT_COLUMNS]
            hidden = []
            for name in NARROW_DROP:
                if _table_width(group, names, keep, with_folds) <= console.width:
                    break
                keep.remove(names.index(name))
                hidden.append(name)
            for i in keep:
                short = TERMINAL_HEADERS.get(names[i], names[i])
                table.add_column(short, justify="left" if i == 0 else "right", no_wrap=i != 0)
            for row in group["rows"]:
                cells = [row["value"], *row_cells(row, with_folds)]
                table.add_row(*(Text(cells[i]) for i in keep))
            console.print(table)
            for row in group["rows"]:
                env = row["environment"]
                console.print(Text(f"  {row['value']}: TF {env['tensorflow'] or '?'}, {env['hardware'] or '?'}"))
        else:
            console.print(Text("  no completed run with a test accuracy in this experiment"))
            hidden = []
        _left_out_table(group, console)
        for line in group_lines(group):
            console.print(Text(line))
        if hidden:
            console.print(f"(narrow terminal: {', '.join(hidden)} hidden; --format markdown shows all)",
                          markup=False)
        console.print()
    for note in data.get("notes") or []:
        console.print(Text(f"Note: {note}"))


def _left_out_table(group: dict, console) -> None:
    """The runs the statistics leave out (failed, interrupted, running, abandoned), with why."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    left = [r for r in group["runs"] if not r["used"]]
    if not left:
        return
    short = short_ids(r["run_id"] for r in left)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="runs left out of the statistics",
                  title_justify="left")
    for name in (*RUN_HEADERS[:4], "why"):
        table.add_column(name, no_wrap=name in ("run", "seed", "status"))
    for run in left[:MAX_TERMINAL_LEFT_OUT]:
        why = run["status_reason"] or ("no test accuracy" if run["status"] == "completed" else "")
        table.add_row(*(Text(c) for c in run_cells(run, short)[:4]), Text(why))
    console.print(table)
    if len(left) > MAX_TERMINAL_LEFT_OUT:
        console.print(Text(f"  ... and {len(left) - MAX_TERMINAL_LEFT_OUT} more (--format json lists every run)"))


def _table_width(group: dict, names: list[str], keep: list[int], with_folds: bool) -> int:
    """Width of the terminal table: widest cell per column plus 3 characters of padding."""
    rows = [[row["value"], *row_cells(row, with_folds)] for row in group["rows"]]
    return sum(max([len(TERMINAL_HEADERS.get(names[i], names[i]))] + [len(r[i]) for r in rows]) + 3
               for i in keep)


def to_text(data: dict) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    to_table(data, Console(file=buffer, width=160, highlight=False, no_color=True, markup=False, emoji=False))
    return buffer.getvalue()


MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def _md_escape(text) -> str:
    """Record text shown literally in Markdown: no links, emphasis or table breaks."""
    return str(text).translate(MD_SPECIAL)


def _md_table(head, rows, right=()) -> list[str]:
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def to_markdown(data: dict) -> str:
    e = _md_escape
    out = ["# mnistexp comparison", "",
           f"{data['n_runs']} runs in {data['n_groups']} experiment group(s), rows by `{data['by']}`, "
           f"equivalence margin ±{pp(data.get('margin', 0.001), signed=False)} percentage points.", "",
           "## Summary", ""]
    out += _md_table(SUMMARY_HEADERS, [[e(c) for c in summary_cells(g)] for g in data["groups"]], right={2, 3})
    for group in data["groups"]:
        with_folds = any(r["folds"] for r in group["rows"])
        out.append(f"## {e(group_title(group, data['by']))}\n")
        out.append(f"<sub>experiment fingerprint {group['fingerprint']}</sub>\n")
        if group["rows"]:
            names = headers(group, data["by"])
            text = {0} | {i for i, n in enumerate(names) if n in TEXT_COLUMNS}  # record text: escaped
            out += _md_table([e(n) for n in names],
                             [[e(c) if i in text else c for i, c in enumerate([row["value"], *row_cells(row, with_folds)])]
                              for row in group["rows"]],
                             right={i for i in range(1, len(names)) if i not in text})
        else:
            out += ["No completed run with a test accuracy in this experiment.", ""]
        out += [f"- {line}" for line in group_lines(group, e)]
        out.append("")
        short = short_ids(r["run_id"] for r in group["runs"])
        out.append("Runs:\n")
        out += _md_table(RUN_HEADERS, [[e(c) for c in run_cells(r, short)] for r in group["runs"][:MAX_RUN_ROWS]],
                         right={1, 4, 5})
        if len(group["runs"]) > MAX_RUN_ROWS:
            out += [f"... and {len(group['runs']) - MAX_RUN_ROWS} more runs (--format json lists every run)", ""]
    out += [f"> warning: {e(w)}" for w in data["warnings"]]
    out += [f"> note: {e(n)}" for n in data.get("notes") or []]
    out += ["", "---", "", f"<sub>{e(foot_text(data))}</sub>"]
    return "\n".join(out).rstrip() + "\n"


CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A text cell a spreadsheet would run as a formula gets a leading quote (OWASP CSV
    injection); numbers, and text that is just a number such as -0.5, stay as they are."""
    if isinstance(value, str) and value.startswith(CSV_TRIGGERS):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def csv_rows(data: dict):
    for group in data["groups"]:
        for row in group["rows"]:
            acc, loss, folds = row["test_accuracy"] or {}, row["test_loss"] or {}, row["folds"] or {}
            yield {
                "fingerprint": group["fingerprint"], "experiment": group["name"], "by": data["by"],
                "value": row["value"], "n": row["n"],
                **{f"test_accuracy_{k}": acc.get(k) for k in ("mean", "std", "ci_low", "ci_high", "min", "max")},
                **{f"test_loss_{k}": loss.get(k) for k in ("mean", "std", "ci_low", "ci_high")},
                "train_s_median": row["train_s_median"], "epoch_s_median": row["epoch_s_median"],
                "images_per_s_median": row["images_per_s_median"], "epochs_run": row["epochs_run"],
                "folds_n": folds.get("n"), "folds_mean": folds.get("mean"), "folds_std": folds.get("std"),
                "tensorflow": row["environment"]["tensorflow"], "hardware": row["environment"]["hardware"],
                "best_run": row["best_run"], "differs": "; ".join(group["differs"]),
                "notes": "; ".join(group["notes"]),
            }


def to_csv(data: dict) -> str:
    buffer = io.StringIO()
    # Text quoted always: Python 3.11's minimal quoting leaves a bare \r in a cell unquoted,
    # which splits the row for every reader.
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writeheader()
    for row in csv_rows(data):
        writer.writerow({k: "" if v is None else csv_safe(v) for k, v in row.items()})
    return buffer.getvalue()


def to_json(data: dict) -> str:
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}"
    "table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
    "td{text-align:right;white-space:nowrap}td.t,th{text-align:left;white-space:normal}th{background:#f3f3f3}"
    "img{max-width:100%;margin:0.3em 0}.warn{color:#a40}.fp{color:#777;font-size:0.8em;margin-top:-0.6em}"
    ".equivalent{color:#060}.different{color:#a00}.inconclusive{color:#865}"
    "footer{margin-top:3em;color:#666;font-size:0.85em;border-top:1px solid #ccc;padding-top:0.5em}"
    "figure{margin:0.5em 0}figcaption{color:#666;font-size:0.85em}"
)


def _html_table(cls: str, head, rows, text_cols=(0,)) -> str:
    e = html.escape
    parts = [f"<table class='{cls}'><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for row in rows:
        parts.append("<tr>" + "".join(f"<td class='t'>{e(c)}</td>" if i in text_cols else f"<td>{e(c)}</td>"
                                      for i, c in enumerate(row)) + "</tr>")
    return "".join(parts) + "</tbody></table>"


def to_html(data: dict, figures: dict) -> str:
    """One self-contained page; `figures`: fingerprint -> [(title, data URI)]."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>mnistexp comparison</title><style>{CSS}</style></head><body>",
        "<h1>mnistexp comparison</h1>",
        f"<p>{data['n_runs']} runs in {data['n_groups']} experiment group(s), rows by <code>{e(data['by'])}</code>, "
        f"equivalence margin ±{pp(data.get('margin', 0.001), signed=False)} percentage points.</p>",
        "<h2>Summary</h2>",
        _html_table("overview", SUMMARY_HEADERS, [summary_cells(g) for g in data["groups"]], text_cols=(0, 1, 4, 5)),
    ]
    for group in data["groups"]:
        with_folds = any(r["folds"] for r in group["rows"])
        parts.append(f"<h2>{e(group_title(group, data['by']))}</h2>")
        parts.append(f"<p class='fp'>experiment fingerprint {e(group['fingerprint'])}</p>")
        if group["rows"]:
            names = headers(group, data["by"])
            parts.append(_html_table("summary", names, [[row["value"], *row_cells(row, with_folds)]
                                                        for row in group["rows"]],
                                     text_cols={0} | {i for i, n in enumerate(names) if n in TEXT_COLUMNS}))
        else:
            parts.append("<p>No completed run with a test accuracy in this experiment.</p>")
        parts.append("<ul>")
        for c in group["comparisons"]:
            parts.append(f"<li class='{e(c['equivalence'])}'>{e(comparison_text(c))}</li>")
            if c.get("power_text") and c["equivalence"] != "equivalent":
                parts.append(f"<li>{e(c['b'])} vs {e(c['a'])} {e(c['power_text'])}</li>")
        other = group_lines(dict(group, comparisons=[]))
        parts += [f"<li>{e(line)}</li>" for line in other]
        parts.append("</ul>")
        for title, uri in figures.get(group["fingerprint"], []):
            parts.append(f"<figure><img alt='{e(title)}' src='{uri}'><figcaption>{e(title)}</figcaption></figure>")
        short = short_ids(r["run_id"] for r in group["runs"])
        parts.append("<h3>Runs</h3>")
        parts.append(_html_table("runs", RUN_HEADERS, [run_cells(r, short) for r in group["runs"][:MAX_RUN_ROWS]],
                                 text_cols=(0, 2, 3)))
        if len(group["runs"]) > MAX_RUN_ROWS:
            parts.append(f"<p>... and {len(group['runs']) - MAX_RUN_ROWS} more runs (--format json lists every run)</p>")
    if data["warnings"]:
        parts.append("<h2>Skipped files</h2><ul>" + "".join(f"<li class='warn'>{e(w)}</li>" for w in data["warnings"])
                     + "</ul>")
    if data.get("notes"):
        parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in data["notes"]) + "</ul>")
    parts.append(f"<footer>{e(foot_text(data))}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
