"""Render a comparison report: terminal table (rich), Markdown, CSV, JSON, HTML."""

from __future__ import annotations

import csv
import html
import io
import json

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


def signed(value: float) -> str:
    """+0.0050; differences below 0.0001 in scientific notation rather than a bare -0.0000."""
    if value == 0 or abs(value) >= 1e-4:
        return f"{value:+.4f}"
    return f"{value:+.1e}"


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
    return f"Experiment {group['fingerprint']} ({group['name']}): {runs}, by {by}"


def comparison_text(c: dict) -> str:
    head = f"{c['b']} vs {c['a']}"
    if c["diff"] is None:
        return f"{head}: {c['verdict']}"
    if c["ci_low"] is None:
        return f"{head}: Δ accuracy {signed(c['diff'])}; {c['verdict']}"
    return (f"{head}: Δ accuracy {signed(c['diff'])}, 95% CI [{signed(c['ci_low'])}, {signed(c['ci_high'])}], "
            f"Welch p = {c['p_value']:.3g} → {c['verdict']}")


def group_lines(group: dict) -> list[str]:
    """The lines under a group's table: what sets it apart, comparisons, notes."""
    lines = []
    if group["differs"]:
        lines.append("Not the same experiment as the largest group; differs in: " + "; ".join(group["differs"]))
    lines += [comparison_text(c) for c in group["comparisons"]]
    lines += [f"Note: {n}" for n in group["notes"]]
    return lines


# ---------------------------------------------------------------- formats


def to_table(data: dict, console) -> None:
    """Narrow enough for a terminal: the environment goes on lines under each table."""
    from rich import box
    from rich.table import Table

    for group in data["groups"]:
        with_folds = any(r["folds"] for r in group["rows"])
        table = Table(title=group_title(group, data["by"]), title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False)
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
            table.add_row(*(cells[i] for i in keep))
        console.print(table)
        for row in group["rows"]:
            env = row["environment"]
            console.print(f"  {row['value']}: TF {env['tensorflow'] or '?'}, {env['hardware'] or '?'}",
                          markup=False)
        for line in group_lines(group):
            console.print(line, markup=False)
        if hidden:
            console.print(f"(narrow terminal: {', '.join(hidden)} hidden; --format markdown shows all)",
                          markup=False)
        console.print()


def _table_width(group: dict, names: list[str], keep: list[int], with_folds: bool) -> int:
    """Width of the terminal table: widest cell per column plus 3 characters of padding."""
    rows = [[row["value"], *row_cells(row, with_folds)] for row in group["rows"]]
    return sum(max(len(TERMINAL_HEADERS.get(names[i], names[i])), *(len(r[i]) for r in rows)) + 3 for i in keep)


def to_text(data: dict) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    to_table(data, Console(file=buffer, width=160, highlight=False, no_color=True))
    return buffer.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(data: dict) -> str:
    out = []
    for group in data["groups"]:
        with_folds = any(r["folds"] for r in group["rows"])
        out.append(f"### {group_title(group, data['by'])}\n")
        names = headers(group, data["by"])
        out.append("| " + " | ".join(names) + " |")
        out.append("|" + "|".join("---" if i == 0 or n in TEXT_COLUMNS else "---:" for i, n in enumerate(names)) + "|")
        for row in group["rows"]:
            out.append("| " + " | ".join(_md_escape(c) for c in [row["value"], *row_cells(row, with_folds)]) + " |")
        out.append("")
        out += [f"- {_md_escape(line)}" for line in group_lines(group)]
        out.append("")
    out += [f"> warning: {w}" for w in data["warnings"]]
    return "\n".join(out).rstrip() + "\n"


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
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(data):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def to_json(data: dict) -> str:
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def to_html(data: dict, figures: dict) -> str:
    """One self-contained page; `figures`: fingerprint -> [(title, data URI)]."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        "<title>mnistexp comparison</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
        "td{text-align:right}td:first-child{text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%;margin:0.5em 0}.warn{color:#a40}",
        "</style></head><body>",
        f"<h1>mnistexp comparison</h1><p>{data['n_runs']} runs in {data['n_groups']} experiment group(s), "
        f"rows by <code>{e(data['by'])}</code>.</p>",
    ]
    for group in data["groups"]:
        with_folds = any(r["folds"] for r in group["rows"])
        parts.append(f"<h2>{e(group_title(group, data['by']))}</h2>")
        parts.append("<table class='summary'><thead><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in headers(group, data["by"])) + "</tr></thead><tbody>")
        for row in group["rows"]:
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in [row["value"], *row_cells(row, with_folds)])
                         + "</tr>")
        parts.append("</tbody></table><ul>")
        parts += [f"<li>{e(line)}</li>" for line in group_lines(group)]
        parts.append("</ul>")
        for title, uri in figures.get(group["fingerprint"], []):
            parts.append(f"<figure><img alt='{e(title)}' src='{uri}'><figcaption>{e(title)}</figcaption></figure>")
    if data["warnings"]:
        parts.append("<h2>Skipped files</h2><ul>" + "".join(f"<li class='warn'>{e(w)}</li>" for w in data["warnings"])
                     + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
