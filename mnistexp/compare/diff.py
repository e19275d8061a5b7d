"""What differs between two runs: config, data, environment, metrics, timings, platform facts."""

from __future__ import annotations

from mnistexp.compare.analysis import flatten_value
from mnistexp.compare.load import field_text, liveness
from mnistexp.compare.stats import finite

# (section title, record field); fields that always differ between runs (ids, clock
# times, artifact file names, per-epoch history) are left out: they answer nothing.
SECTIONS = (
    ("config", "experiment.config"),
    ("data", "data"),
    ("environment", "environment"),
    ("runtime", "runtime"),
    ("metrics", "metrics"),
    ("timings", "timings"),
    ("throughput", "throughput"),
    ("run", None),
    ("tags", "tags"),
    ("platform_info", "platform_info"),
)
RUN_FIELDS = ("platform", "status", "error", "seed", "schema_version")


def _section(record: dict, field: str | None, now=None) -> dict:
    if field is None:
        flat = {k: record.get(k) for k in RUN_FIELDS}
        status, why = liveness(record, now)  # `running` whose writer is gone: abandoned, as compare says
        if why:
            flat["status"] = status
            flat["status_reason"] = f"{why} (recorded as {record.get('status')})"
        flat["model.params"] = (record.get("model") or {}).get("params")
        return flat
    value = record
    for part in field.split("."):
        value = (value or {}).get(part) if isinstance(value, dict) else None
    flat: dict = {}
    flatten_value(value or {}, "", flat)
    return flat


def diff_records(a: dict, b: dict, show_all: bool = False, now=None) -> dict:
    fp_a, fp_b = a["experiment"]["fingerprint"], b["experiment"]["fingerprint"]
    sections = []
    for title, field in SECTIONS:
        flat_a, flat_b = _section(a, field, now), _section(b, field, now)
        rows = []
        for key in sorted(set(flat_a) | set(flat_b)):
            va, vb = flat_a.get(key), flat_b.get(key)
            if va == vb and not show_all:
                continue
            delta = vb - va if finite(va) and finite(vb) else None
            rows.append({"key": key, "a": va, "b": vb, "delta": delta, "same": va == vb})
        if rows:
            sections.append({"name": title, "rows": rows})
    if fp_a == fp_b:
        verdict = (f"Same experiment (fingerprint {fp_a}): differences come from the seed, runtime "
                   "settings, platform or environment.")
    else:
        verdict = (f"Different experiments (fingerprints {fp_a} vs {fp_b}): `compare` never pools them; "
                   "see the config and data rows below.")
    return {"a": a["run_id"], "b": b["run_id"], "same_experiment": fp_a == fp_b,
            "verdict": verdict, "sections": sections}


def cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return field_text(value)


def print_diff(result: dict, console) -> None:
    """Record text goes in as rich Text, never markup: `[/]` or `[link=...]` print as written."""
    from rich.table import Table
    from rich.text import Text

    console.print(Text(f"A: {result['a']}\nB: {result['b']}\n{result['verdict']}"))
    if not result["sections"]:
        console.print(Text("No recorded field differs."))
        return
    table = Table(show_lines=False)
    table.add_column("field")
    table.add_column("A", overflow="fold")
    table.add_column("B", overflow="fold")
    table.add_column("B − A", justify="right")
    for section in result["sections"]:
        table.add_row(Text(section["name"], style="bold"), "", "", "")
        for row in section["rows"]:
            delta = "" if row["delta"] is None else f"{row['delta']:+.6g}"
            table.add_row(Text("  " + row["key"]), Text(cell(row["a"])), Text(cell(row["b"])), Text(delta))
    console.print(table)
