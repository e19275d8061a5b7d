"""`mnistexp run`: train and evaluate the experiment on one platform, write its run record."""

from __future__ import annotations

import sys

import click

from mnistexp import adapters
from mnistexp.paths import default_config_path, default_results_dir

# Shorthand flags for the most used config keys: flag name -> config key.
SHORTHANDS = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "train_limit": "data.train_limit",
    "validation_split": "data.validation_split",
    "dataset": "data.dataset",
}


class PlatformCommand(click.Command):
    """`run` with the options of the chosen platform only (each platform declares its own).

    Only that platform's module is imported to parse them; `run --help` lists every
    platform's options, and an option of another platform is refused with one line.
    """

    def parse_args(self, ctx, args):
        wanted = platforms_for(args)
        self.params = [p for p in self.params if not getattr(p, "mnistexp_platform", None)]
        for name in wanted:
            try:
                options = adapters.adapter_class(name).cli_options
            except ImportError:  # a plugin that cannot be imported: its options are left out
                if len(wanted) == 1:
                    raise
                continue
            for option in options:
                if option.name not in {p.name for p in self.params}:
                    option.mnistexp_platform = name
                    self.params.append(option)
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            owners = option_owners(exc.option_name)
            if owners:
                raise click.UsageError(f"{exc.option_name} applies to --platform {' / '.join(owners)} only",
                                       ctx=ctx) from None
            raise


def platforms_for(args: list[str]) -> list[str]:
    """The platform named on the command line (local by default); all of them for --help."""
    if any(a in ("--help", "-h") for a in args):
        return adapters.platform_names(runs_here=True)
    for i, arg in enumerate(args):
        if arg in ("--platform", "-P") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--platform="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-P") and len(arg) > 2:
            value = arg[2:]
        else:
            continue
        return [value] if value in adapters.platform_names(runs_here=True) else []
    return ["local"]


def option_owners(option_name: str) -> list[str]:
    """Which platforms declare `--option` (imports them all: only on an error path)."""
    return [name for name in adapters.platform_names(runs_here=True)
            if any(option_name in o.opts for o in adapters.adapter_class(name).cli_options)]


def platform_options(kwargs: dict) -> dict:
    """Take the chosen platform's own option values (added by PlatformCommand) out of kwargs."""
    params = click.get_current_context().command.params
    owned = {p.name for p in params if getattr(p, "mnistexp_platform", None)}
    return {name: kwargs.pop(name) for name in list(kwargs) if name in owned}


def resolve_run_config(config_path, overrides, flags) -> dict:
    """The resolved config of `run`: --config (or the default), then --set, then the shorthands."""
    from mnistexp.experiment.config import load_config
    from mnistexp.zoo import resolve_config_arg

    for flag, key in SHORTHANDS.items():
        value = flags.get(flag)
        if value is not None:
            overrides = [*overrides, f"{key}={value}"]  # a dedicated flag wins over --set
    if flags.get("deterministic"):
        overrides = [*overrides, "runtime.deterministic=true"]
    if flags.get("early_stopping") is not None:
        overrides = [*overrides, f"train.early_stopping.enabled={str(flags['early_stopping']).lower()}"]
    if flags.get("lr_decay") is not None:
        overrides = [*overrides, f"train.lr_decay.enabled={str(flags['lr_decay']).lower()}"]
    return load_config(resolve_config_arg(config_path) if config_path else default_config_path(), list(overrides))


def _run(platform, config_path, overrides, data_dir, results_dir, quiet, tags, flags, adapter_kwargs):
    from mnistexp.output import print_run_summary

    config = resolve_run_config(config_path, overrides, flags)
    adapter = adapters.adapter_class(platform)(**adapter_kwargs)
    from mnistexp.runner import RunInterrupted, run_experiment

    verbose = 0 if quiet else (1 if sys.stdout.isatty() else 2)
    tag_map = _parse_tags(tags)
    try:
        result = run_experiment(config, adapter, results_dir, data_dir, verbose=verbose, tags=tag_map)
    except RunInterrupted as exc:
        message = str(exc)  # e.g. "interrupted by the user (Ctrl-C); partial record in ..."
        click.echo(message[:1].upper() + message[1:], err=True)
        sys.exit(130)
    except KeyboardInterrupt:  # before the run folder existed: nothing was written
        click.echo("Interrupted before the run started; nothing was written.", err=True)
        sys.exit(130)
    print_run_summary(result.record, result.run_dir, quiet=quiet)
    for line in adapter.messages:
        click.echo(line)


def _run_seeds(platform, config_path, overrides, data_dir, results_dir, quiet, tags, flags, adapter_kwargs,
               study_args):
    """`run --seeds`: one run per seed in parallel processes (mnistexp.study)."""
    from mnistexp import study as studies

    seeds = studies.parse_seeds(study_args["seeds"])
    storage, name = study_args["storage"], study_args["study"]
    if storage and not name:
        raise click.UsageError("--storage needs --study NAME: every machine joins the study by its name")
    config = resolve_run_config(config_path, overrides, flags)
    jobs = study_args["jobs"] or studies.default_jobs(len(seeds))
    config["runtime"] = studies.split_threads(config["runtime"], jobs)
    study = studies.SeedStudy(
        name=name or studies.default_study_name(config), seeds=seeds, config=config, platform=platform,
        adapter_options=adapter_kwargs, results_dir=str(results_dir), data_dir=data_dir,
        tags=_parse_tags(tags), jobs=jobs, storage=storage)
    threads = config["runtime"]["intra_op_threads"]
    threads = f"{threads} TF thread(s) each" if threads else "TensorFlow's default threads"
    where = f"storage {_redact(storage)}" if storage else "this machine"
    click.echo(f"study {study.name}: seeds {studies._seed_text(seeds)} on {platform}, {jobs} process(es) at a time "
               f"({threads}), {where}")
    live = not quiet and sys.stdout.isatty()
    result = studies.run_seed_study(study, report=click.echo, live=live)
    for line in studies.summary_lines(result):
        click.echo(line)
    if result.interrupted:
        click.echo(f"Interrupted: study {study.name}; each started seed's record is interrupted or completed"
                   + ("; start the same command again to run the rest" if storage else ""), err=True)
        sys.exit(130)
    if result.failed:
        click.echo(f"Error: {len(result.failed)} of {len(result.outcomes)} seed(s) failed: "
                   + "; ".join(f"seed {o.seed}: {o.error}" for o in result.failed[:3]), err=True)
        sys.exit(1)


def _redact(url: str) -> str:
    from mnistexp.explore.storage import _redact as redact

    return redact(url)


def _parse_tags(items) -> dict:
    tags = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"'{item}' must look like KEY=VALUE", param_hint="--tag")
        key, value = item.split("=", 1)
        tags[key.strip()] = value
    return tags


@click.command("run", cls=PlatformCommand)
@click.option("--platform", "-P", type=click.Choice(adapters.platform_names(runs_here=True)), default="local",
              show_default=True, help="Where to run and log the experiment.")
@click.option("--config", "config_path", metavar="FILE_OR_NAME",
              help="Experiment config: a YAML file or a zoo name (canonical, bn-cnn, keras-example, "
                   "cnn9975-lite, deep-mlp, ...; see configs/). Default: ./config.yaml, else canonical.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set train.epochs=3 (repeatable; type-checked).")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="MNISTEXP_DATA_DIR",
              help="Folder with local MNIST files (IDX .gz/raw, .npz or CSV) instead of downloading "
                   "[env MNISTEXP_DATA_DIR].")
@click.option("--results-dir", type=click.Path(file_okay=False), default=None,
              help="Where run folders go [default: results, env MNISTEXP_RESULTS_DIR].")
@click.option("--epochs", type=click.IntRange(min=1), help="Shorthand for --set train.epochs=N.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Shorthand for --set train.batch_size=N.")
@click.option("--seed", type=click.IntRange(min=0), help="Shorthand for --set train.seed=N.")
@click.option("--train-limit", type=click.IntRange(min=1), metavar="N",
              help="Train on the first N images only (quick runs); --set data.train_limit=N.")
@click.option("--validation-split", type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of training images held out for validation.")
@click.option("--dataset", type=click.Choice(["mnist", "fashion-mnist"]), help="Data set to use.")
@click.option("--early-stopping/--no-early-stopping", default=None,
              help="Stop when the monitored metric stops improving (train.early_stopping.*).")
@click.option("--lr-decay/--no-lr-decay", default=None,
              help="Reduce the learning rate on plateaus (train.lr_decay.*).")
@click.option("--deterministic", is_flag=True, default=False,
              help="Bit-reproducible on the same machine (TF op determinism; slower).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Extra tag for the run record.")
@click.option("--seeds", metavar="SEEDS",
              help="A seed study: one run per seed, e.g. 1-5, 1,2,7 or 1-3,10, in parallel processes; "
                   "records tagged study=<name>.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="With --seeds: runs at a time on this machine [default: one per core, at most one per seed]; "
                   "the cores are split between their TensorFlow thread pools.")
@click.option("--study", "study", metavar="NAME",
              help="With --seeds: the study name (tag study=NAME) [default: <config name>-<UTC time>].")
@click.option("--storage", metavar="URL",
              help="With --seeds: an Optuna RDB storage (postgresql://user@host/db, sqlite:///file.db) shared by "
                   "several machines, each started with the same command: every seed runs once.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; one summary line (for CI).")
def _command(platform, config_path, overrides, data_dir, results_dir, quiet, tags, **rest):
    """Train and evaluate the experiment on PLATFORM; write results/<run-id>/.

    The run folder holds record.json (the versioned run record), history.csv,
    model.keras, confusion_matrix.csv and PNG plots. Config keys are grouped
    data.*, model.*, train.* and runtime.*; see config.yaml.
    """
    flags = {k: rest.pop(k) for k in (*SHORTHANDS, "deterministic", "early_stopping", "lr_decay")}
    study_args = {k: rest.pop(k) for k in ("seeds", "jobs", "study", "storage")}
    if study_args["seeds"] is not None:
        if flags["seed"] is not None:
            raise click.UsageError("give --seed (one run) or --seeds (a study), not both")
        _run_seeds(platform, config_path, overrides, data_dir, results_dir or default_results_dir(), quiet, tags,
                   flags, rest, study_args)
        return
    given = [f"--{k}" for k, v in study_args.items() if v is not None]
    if given:
        raise click.UsageError(f"{', '.join(given)} applies to a seed study only; add --seeds (e.g. --seeds 1-5)")
    _run(platform, config_path, overrides, data_dir, results_dir or default_results_dir(), quiet, tags,
         flags, rest)

command = _command
