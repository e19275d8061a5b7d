"""The Kaggle kernel: mnistexp_kaggle.py plus kernel-metadata.json, as `kaggle kernels push` reads them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mnistexp.kernels.build import KernelError, render_kernel, write_files

CODE_FILE = "mnistexp_kaggle.py"
METADATA_FILE = "kernel-metadata.json"
DEFAULT_OUT = Path("platforms") / "kaggle"
COMPETITION = "digit-recognizer"
# Attached by default: a public copy of the official MNIST files, so a Kaggle run is the same
# experiment (same fingerprint) as a local one. Keep in sync with entry.KERNEL_DEFAULT_DATASET.
DEFAULT_DATASET = "hojjatk/mnist-dataset"
# The committed kernel's owner; `mnistexp kaggle push` swaps in the signed-in user.
PLACEHOLDER_USER = "your-kaggle-username"

USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,49}$")
SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9][a-z0-9-]{2,}$")
# The keys `kaggle kernels push` reads, every one set explicitly.
METADATA_KEYS = (
    "id", "title", "code_file", "language", "kernel_type", "is_private", "enable_gpu",
    "enable_tpu", "enable_internet", "dataset_sources", "competition_sources",
    "kernel_sources", "model_sources",
)


def slugify(text: str) -> str:
    """Kaggle's slug of a title (python-slugify on ASCII): lower case, runs of other chars -> '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def kernel_slug(config: dict) -> str:
    slug = slugify(f"mnistexp {config.get('name', 'custom')}")[:50].strip("-")
    return slug if len(slug) >= 5 else "mnistexp"


def build_metadata(config: dict, user: str, gpu: bool = False, dataset_sources=(DEFAULT_DATASET,),
                   competition: str | None = None, slug: str | None = None) -> dict:
    """kernel-metadata.json; `competition` (digit-recognizer) switches the kernel to the
    competition's data and a submission, a different experiment."""
    if not USER_RE.match(user or ""):
        raise KernelError(f"Kaggle user name {user!r} is not valid; pass your Kaggle user name to --kaggle-user")
    slug = slug or kernel_slug(config)
    for source in dataset_sources:
        if not SOURCE_RE.match(source):
            raise KernelError(f"data set source {source!r} must look like owner/dataset-slug "
                              "(as in kaggle.com/datasets/owner/dataset-slug)")
    meta = {
        "id": f"{user}/{slug}",
        "title": slug.replace("-", " "),  # slugifies back to exactly the id's slug
        "code_file": CODE_FILE,
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": bool(gpu),
        "enable_tpu": False,
        "enable_internet": False,
        "dataset_sources": list(dataset_sources),
        "competition_sources": [competition] if competition else [],
        "kernel_sources": [],
        "model_sources": [],
    }
    if competition not in (None, COMPETITION):
        raise KernelError(f"competition {competition!r} is not supported; the kernel knows {COMPETITION}")
    if not competition and not dataset_sources:
        raise KernelError(f"the kernel needs data: attach an MNIST data set (--dataset-source, default "
                          f"{DEFAULT_DATASET}) or pass --competition {COMPETITION}")
    validate_metadata(meta)
    return meta


def validate_metadata(meta: dict) -> None:
    """The checks `kaggle kernels push` makes before it uploads, plus this project's rules."""
    missing = [key for key in METADATA_KEYS if key not in meta]
    if missing:
        raise KernelError(f"{METADATA_FILE} lacks {', '.join(missing)}; regenerate it with `mnistexp kernel kaggle`")
    owner, _, slug = str(meta["id"]).partition("/")
    if not owner or not slug or "/" in slug or len(slug) < 5:
        raise KernelError(f"{METADATA_FILE}: id {meta['id']!r} must be <user>/<slug> with a slug of 5+ characters")
    if len(meta["title"]) < 5 or slugify(meta["title"]) != slug:
        raise KernelError(f"{METADATA_FILE}: title {meta['title']!r} must slugify to the id's slug {slug!r}")
    if meta["language"] != "python" or meta["kernel_type"] != "script":
        raise KernelError(f"{METADATA_FILE}: language must be python and kernel_type script")
    for key in ("is_private", "enable_gpu", "enable_tpu", "enable_internet"):
        if not isinstance(meta[key], bool):
            raise KernelError(f"{METADATA_FILE}: {key} must be true or false")
    if meta["enable_internet"]:
        raise KernelError(f"{METADATA_FILE}: enable_internet must be false (the kernel runs offline)")


def resolve_user(option: str | None, out_dir: Path) -> str:
    """--kaggle-user, else KAGGLE_USERNAME, else the owner of the metadata already in out_dir."""
    if option:
        return option
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    existing = Path(out_dir) / METADATA_FILE
    if existing.is_file():
        try:
            return str(json.loads(existing.read_text(encoding="utf-8"))["id"]).split("/")[0]
        except (ValueError, KeyError, OSError):
            pass
    return PLACEHOLDER_USER


def kernel_source(config: dict, meta: dict) -> str:
    slug = meta["id"].split("/", 1)[1]
    info = {
        "platform": "kaggle",
        "file": CODE_FILE,
        "slug": slug,
        "enable_gpu": meta["enable_gpu"],
        "competition_sources": list(meta["competition_sources"]),
        "mode": "competition" if meta["competition_sources"] else "mnist",
        "dataset_sources": list(meta["dataset_sources"]),
    }
    inputs = (f"the {COMPETITION} competition" if meta["competition_sources"] else
              "the MNIST data set " + ", ".join(meta["dataset_sources"]))
    submission = " and submission.csv" if meta["competition_sources"] else ""
    doc = f"""mnistexp on Kaggle: the '{config.get('name', 'custom')}' experiment as one self-contained script.

Push it with `mnistexp kaggle push` (or `kaggle kernels push -p platforms/kaggle`), or paste
it into a Kaggle notebook with {inputs} added as input and internet off.
It writes record.json, history.csv, model.keras and plots{submission} to /kaggle/working/;
bring the run home with
`mnistexp kaggle pull <user>/{slug}` and compare it with `mnistexp compare results/`."""
    return render_kernel(config, "mnistexp.adapters.kaggle.entry", info, doc)


def generate_kaggle(config: dict, out_dir: str | Path = DEFAULT_OUT, user: str = PLACEHOLDER_USER,
                    gpu: bool = False, dataset_sources=(DEFAULT_DATASET,), competition: str | None = None) -> list[Path]:
    """Write mnistexp_kaggle.py and kernel-metadata.json to out_dir; return their paths."""
    meta = build_metadata(config, user, gpu, dataset_sources, competition)
    files = {
        CODE_FILE: kernel_source(config, meta),
        METADATA_FILE: json.dumps(meta, indent=2) + "\n",
    }
    return write_files(out_dir, files)
