"""Group runs by experiment fingerprint, sub-group them (platform, seed, tag...), summarize.

Runs of different fingerprints are never pooled: each fingerprint is its own group, and
the report says which config keys or data checksums set it apart from the largest group.
The result is a plain JSON-able dict (the `--format json` output); every renderer reads it.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from mnistexp.compare import stats
from mnistexp.compare.load import Run, field_text, get_field, liveness, resolve_field, this_host
from mnistexp.experiment.record import experiment_part

MAX_ALL_PAIRS = 6  # above this many sub-groups, compare each with the largest one only
SORT_KEYS = {
    "name": lambda r: _natural(r["value"]),
    "n": lambda r: r["n"],
    "test_accuracy": lambda r: _mean(r["test_accuracy"]),
    "test_loss": lambda r: _mean(r["test_loss"]),
    "train_s": lambda r: r["train_s_median"],
    "epoch_s": lambda r: r["epoch_s_median"],
    "images_per_s": lambda r: r["images_per_s_median"],
}
# Fields the statistics use: a group where runs lack them says so.
CHECKED_FIELDS = ("metrics.test_loss", "metrics.epochs_run", "timings.train_s",
                  "throughput.train_images_per_s", "environment.tensorflow")


class Report:
    """`data`: the JSON-able summary; `runs`: (fingerprint, row value) -> runs, for plots."""

    def __init__(self, data: dict, runs: dict):
        self.data = data
        self.runs = runs


def parse_filters(items) -> list[tuple[str, set[str]]]:
    filters = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ValueError(f"--filter '{item}' must look like FIELD=VALUE[,VALUE...], e.g. platform=local,comet")
        filters.append((resolve_field(key.strip()), {v.strip() for v in values.split(",")}))
    return filters


def apply_filters(runs: list[Run], filters) -> list[Run]:
    return [r for r in runs if all(field_text(get_field(r.record, k)) in vals for k, vals in filters)]


def build_report(runs: list[Run], by: str = "platform", sort: str | None = None,
                 warnings: list[str] | None = None, margin: float = stats.DEFAULT_MARGIN,
                 now=None) -> Report:
    """`margin`: the equivalence margin in accuracy (0.001 = 0.1 percentage points);
    `now`: the time abandoned runs are judged at (tests pin it)."""
    import datetime as dt

    now = now or dt.datetime.now(dt.timezone.utc)
    host = this_host()
    by = resolve_field(by)
    sort_key, descending = _parse_sort(sort)
    if runs and all(get_field(r.record, by) is None for r in runs):
        raise ValueError(f"--by '{by}': no run has this field; try platform, seed, study, "
                         "environment.tensorflow or runtime.jit_compile")
    by_fp: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_fp[run.record["experiment"]["fingerprint"]].append(run)
    ordered = sorted(by_fp.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    reference = _flat_experiment(ordered[0][1][0].record) if ordered else {}
    groups, row_runs = [], {}
    for i, (fp, members) in enumerate(ordered):
        group = _group(fp, members, by, reference if i else None, row_runs, margin, now, host)
        group["rows"].sort(key=lambda r: _sortable(SORT_KEYS[sort_key](r)), reverse=descending)
        group["summary"]["values"] = [r["value"] for r in group["rows"]]  # in the table's order
        groups.append(group)
    data = {"by": by, "margin": margin, "n_runs": len(runs), "n_groups": len(groups), "groups": groups,
            "warnings": list(warnings or []), "notes": []}
    return Report(data, row_runs)


def _parse_sort(sort: str | None) -> tuple[str, bool]:
    if not sort:
        return "name", False
    descending = sort.startswith("-")
    key = sort.lstrip("-+")
    if key not in SORT_KEYS:
        raise ValueError(f"--sort '{sort}' is not one of {', '.join(SORT_KEYS)} (prefix - for descending)")
    return key, descending


# Runtime settings that change the arithmetic but not the experiment (fingerprint), with the value
# a record from before the setting existed ran with.
RUNTIME_NOTED = {"runtime.mixed_precision": "float32", "runtime.backend": "tensorflow"}


def _group(fp: str, members: list[Run], by: str, reference: dict | None, row_runs: dict,
           margin: float, now, host: str) -> dict:
    records = [r.record for r in members]
    usable = [r for r in members if _usable(r.record)]
    notes = []
    versions = sorted({r["schema_version"] for r in records})
    if len(versions) > 1:
        notes.append(f"mixes run-record schema versions {', '.join(map(str, versions))}")
    runs = [_run_entry(r, now, host) for r in members]
    statuses = Counter(e["status"] for e in runs if not e["used"])
    if statuses:
        left = sum(statuses.values())
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        notes.append(f"{left} run(s) not completed or without test accuracy ({detail}) are left out of the statistics")
    for path in CHECKED_FIELDS:
        missing = sum(1 for r in usable if get_field(r.record, path) is None)
        if missing:
            notes.append(f"{missing} of {len(usable)} runs lack {path}")
    for path, default in RUNTIME_NOTED.items():
        # Same experiment, but not the same arithmetic: say so, and how to split the rows.
        name = path.split(".", 1)[1]
        counts = Counter(field_text((r.record.get("runtime") or {}).get(name) or default) for r in usable)
        if len(counts) > 1 and path != by:
            detail = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
            notes.append(f"runs differ in {path} ({detail}); --by {path} compares them")
    rows_by: dict[str, list[Run]] = defaultdict(list)
    for run in usable:
        rows_by[field_text(get_field(run.record, by))].append(run)
    rows = []
    for value, row_members in rows_by.items():
        rows.append(_row(value, row_members))
        row_runs[(fp, value)] = row_members
    names = sorted({r["experiment"]["name"] for r in records})
    flat = _flat_experiment(records[0])
    distinct = _distinct(flat, reference) if reference is not None else []
    target = _target(records)
    comparisons = _comparisons(rows, rows_by, by, margin)
    return {
        "fingerprint": fp, "name": ", ".join(names),
        "label": " · ".join([", ".join(names), str(flat.get("data.dataset") or "?"), *distinct]),
        "n_runs": len(records), "n_used": len(usable),
        "schema_versions": versions,
        "differs": _differences(flat, reference) if reference is not None else [],
        "notes": notes, "rows": rows, "comparisons": comparisons,
        "expected_test_accuracy": target,
        "target_met": ({r["value"]: r["test_accuracy"]["mean"] >= target for r in rows}
                       if target is not None else None),
        "summary": _summary(rows, comparisons, target, len(usable)),
        "runs": runs,
    }


def _run_entry(run: Run, now, host: str) -> dict:
    record = run.record
    status, why = liveness(record, now, host)
    metrics = record.get("metrics") or {}
    return {"run_id": record["run_id"], "seed": record.get("seed"), "platform": record.get("platform"),
            "status": status, "status_reason": why, "recorded_status": record["status"],
            "used": _usable(record), "test_accuracy": _num(metrics.get("test_accuracy")),
            "train_s": _num((record.get("timings") or {}).get("train_s")),
            "total_s": _num((record.get("timings") or {}).get("total_s")), "path": run.path}


def _target(records: list[dict]):
    """expected_test_accuracy of the config (not in the fingerprint: the most common one)."""
    targets = Counter(t for r in records
                      if stats.finite(t := r["experiment"]["config"].get("expected_test_accuracy")))
    return targets.most_common(1)[0][0] if targets else None


def _summary(rows: list[dict], comparisons: list[dict], target, n_used: int) -> dict:
    accs = [r["test_accuracy"]["mean"] * r["n"] for r in rows if r["test_accuracy"]]
    met = None
    if target is not None and rows:
        hits = [r["value"] for r in rows if r["test_accuracy"]["mean"] >= target]
        met = "yes" if len(hits) == len(rows) else "no" if not hits else "partly (" + ", ".join(hits) + ")"
    return {
        "values": [r["value"] for r in rows], "n": n_used,
        "mean_accuracy": sum(accs) / n_used if n_used else None,
        "verdicts": [f"{c['b']} vs {c['a']}: {c['equivalence']}" for c in comparisons],
        "target_met": met,
    }


def _usable(record: dict) -> bool:
    return record["status"] == "completed" and stats.finite(record["metrics"].get("test_accuracy"))


def _row(value: str, members: list[Run]) -> dict:
    recs = [r.record for r in members]
    acc = [r["metrics"]["test_accuracy"] for r in recs]
    loss = [_num(r["metrics"].get("test_loss")) for r in recs]
    folds = [f["test_accuracy"] for r in recs for f in r.get("folds") or []]
    epochs = sorted({r["metrics"].get("epochs_run") for r in recs} - {None})
    return {
        "value": value, "n": len(recs),
        "test_accuracy": stats.summarize(acc),
        "test_loss": stats.summarize(loss),
        "best_run": max(recs, key=lambda r: r["metrics"]["test_accuracy"])["run_id"],
        "train_s_median": stats.median(_num(r["timings"].get("train_s")) for r in recs),
        "epoch_s_median": stats.median(t for r in recs for t in epoch_times(r)),
        "images_per_s_median": stats.median(_num((r.get("throughput") or {}).get("train_images_per_s")) for r in recs),
        "epochs_run": "-".join(map(str, dict.fromkeys([epochs[0], epochs[-1]]))) if epochs else None,
        "folds": stats.summarize(folds) if folds else None,
        "environment": _environment(recs),
        "run_ids": [r["run_id"] for r in recs],
    }


def epoch_times(record: dict) -> list[float]:
    """Per-epoch wall times, the first left out when there are more: it includes tracing."""
    times = [_num(h.get("epoch_time_s")) for h in record["history"] if "fold" not in h or h["fold"] == 0]
    times = [t for t in times if t is not None]
    return times[1:] if len(times) > 1 else times


def _environment(recs: list[dict]) -> dict:
    tf = sorted({str(r["environment"].get("tensorflow")) for r in recs if r["environment"].get("tensorflow")})
    hardware = set()
    for r in recs:
        env = r["environment"]
        gpus = env.get("gpus") or []
        if gpus:
            hardware.add("GPU: " + ", ".join(sorted(set(gpus))))
        else:
            cpu = env.get("cpu") or "unknown CPU"
            hardware.add(f"CPU: {cpu}" + (f" x{env['cpu_count']}" if env.get("cpu_count") else ""))
    return {"tensorflow": ", ".join(tf) or None, "hardware": "; ".join(sorted(hardware)) or None}


def _comparisons(rows: list[dict], members: dict[str, list[Run]], by: str, margin: float) -> list[dict]:
    if len(rows) < 2:
        return []
    ordered = sorted(rows, key=lambda r: (-r["n"], _natural(r["value"])))
    if len(ordered) <= MAX_ALL_PAIRS:
        pairs = [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:]]
    else:
        pairs = [(ordered[0], b) for b in ordered[1:]]
    out = []
    for a, b in pairs:
        ra, rb = members[a["value"]], members[b["value"]]
        c = stats.compare(_accuracies(ra), _accuracies(rb), _seeds(ra), _seeds(rb), margin=margin)
        out.append({"field": by, "a": a["value"], "b": b["value"], **c})
    return out


def _accuracies(runs: list[Run]) -> list[float]:
    return [r.record["metrics"]["test_accuracy"] for r in runs]


def _seeds(runs: list[Run]) -> list:
    return [r.record.get("seed") for r in runs]


def _num(value):
    return value if stats.finite(value) else None


def _mean(summary):
    return None if summary is None else summary["mean"]


def _sortable(value):
    # None sorts last in ascending order; tuples keep numbers and text comparable.
    return (1, 0) if value is None else (0, value)


def _natural(text: str):
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def _flat_experiment(record: dict) -> dict:
    flat: dict = {}
    flatten_value(experiment_part(record["experiment"]["config"]), "", flat)
    for name, digest in (record["data"].get("checksums") or {}).items():
        flat[f"data checksum {name}"] = digest[:12]
    flat["data.dataset"] = record["data"].get("dataset")
    return flat


def flatten_value(value, prefix: str, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            flatten_value(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            flatten_value(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def _distinct(flat: dict, reference: dict) -> list[str]:
    """What sets a group apart from the largest one, as overrides: train.batch_size=256."""
    return [f"{k}={field_text(flat.get(k))}" for k in sorted(set(flat) | set(reference))
            if flat.get(k) != reference.get(k)]


def _differences(flat: dict, reference: dict) -> list[str]:
    keys = sorted(set(flat) | set(reference))
    return [f"{k}: {field_text(flat.get(k))} (largest group: {field_text(reference.get(k))})"
            for k in keys if flat.get(k) != reference.get(k)]

