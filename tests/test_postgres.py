"""Distributed studies against a real PostgreSQL server: two workers on one study, for `run --seeds`
and for `explore`. The test starts its own server in a temporary folder (initdb/pg_ctl from
Debian's `postgresql` package) and skips with the reason when it cannot."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_study import check_two_workers_run_each_seed_once

pytestmark = pytest.mark.slow


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server():
    """A throw-away PostgreSQL server on 127.0.0.1 (trust auth); yields a function making databases."""
    pytest.importorskip("psycopg2", reason="psycopg2 (PostgreSQL driver) is not installed: pip install -e '.[dev]'")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install -y postgresql)")
    # initdb refuses to run as root: run the server as the package's `postgres` user then.
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
        if not runuser or user is None:
            pytest.skip("running as root without runuser or a postgres/nobody user to run PostgreSQL as")
        prefix = [runuser, "-u", user, "--"]
    folder = Path(tempfile.mkdtemp(prefix="mnistexp-pg-"))
    data, log = folder / "data", folder / "server.log"
    if prefix:
        shutil.chown(folder, user=prefix[2])
    os.chmod(folder, 0o700)
    port = _free_port()
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
                        "--no-sync"], check=True, capture_output=True, text=True, timeout=120)
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True, text=True, timeout=90)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or (log.read_text()[-300:] if log.exists() else "")
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be started: {exc}; {detail.strip()[-300:]}")

    def make_db(name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"

    yield make_db
    subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_two_workers_run_each_seed_of_one_study_once(postgres_server, tiny_data_dir, tmp_path):
    check_two_workers_run_each_seed_once(postgres_server("seeds"), tiny_data_dir, tmp_path)


def test_two_explore_workers_run_each_grid_point_once(postgres_server, tiny_data_dir, tmp_path):
    url = postgres_server("explore")
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "mnistexp.cli", "explore", "--study", "grid", "--storage", url,
            "-r", "0.001,0.01", "-b", "32,64", "-e", "1", "--no-pruning",
            "--data-dir", str(tiny_data_dir), "--results-dir", str(results)]
    workers = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=480)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    recs = [json.loads(p.read_text()) for p in (results / "grid" / "runs").glob("*/record.json")]
    points = sorted((r["experiment"]["config"]["train"]["learning_rate"], r["experiment"]["config"]["train"]["batch_size"])
                    for r in recs)
    assert points == sorted((lr, b) for lr in (0.001, 0.01) for b in (32, 64)), outputs  # each point once
    assert all(r["status"] == "completed" and r["tags"]["study"] == "grid" for r in recs)
    ran = sum(len(re.findall(r"^trial \d+: complete", out, re.MULTILINE)) for out in outputs)
    assert ran == 4, outputs  # one line per trial run, over both workers
    assert "secret" not in "".join(outputs) and "oneDNN" not in "".join(outputs)  # TF's import noise is hidden

    import optuna

    from mnistexp.explore.storage import open_storage

    study = optuna.load_study(study_name="grid", storage=open_storage(url))
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 4
