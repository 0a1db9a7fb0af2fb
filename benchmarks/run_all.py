"""`make bench`: every benchmark in benchmarks/, on SQLite and (when DATABASE_URL names
PostgreSQL) on PostgreSQL, merged into one table.

Each benchmark runs as its own process,

    python benchmarks/NAME.py --database-url URL --evidence-dir DIR --json PATH

and writes its figures to PATH as records (benchmarks/common.py). A benchmark says what
database it wants with a module-level `DATA = "large"` (a copy of the large demo data set;
the default) or `DATA = "fresh"` (an empty database it fills itself). Each gets its own:
a copy of the cached data set (a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on
PostgreSQL, the evidence store hard-linked: its files are written once under their
SHA-256 and never changed), dropped when it finishes, so runs never disturb each other
or the cache.

The large data set (`licensing demo load --scale large --seed 2026`, many minutes) is
built once and cached: SQLite under instance/bench/ (file, evidence directory and a
marker), PostgreSQL as the template database licensing_bench_large_2026 (marker in its
comment, evidence under instance/bench/). The marker records the seed and a hash of
licensing/demo_large.py; when the hash differs the data set is rebuilt, unless
BENCH_REUSE_DATA=1. `licensing db upgrade` is always run on it (or, for a data set given
from outside, on each copy), so new migrations such as indexes apply.

Environment:
    DATABASE_URL          postgresql+psycopg://... adds the PostgreSQL runs (the server
                          the template and the copies are made on)
    BENCH_SCALE           large (default) or medium (a twentieth: for trying things out)
    BENCH_SEED            2026
    BENCH_REUSE_DATA=1    use a cached data set made by another version of demo_large.py
    BENCH_SQLITE_DATA     an existing SQLite data set to copy from (not modified), with
    BENCH_SQLITE_EVIDENCE its evidence directory (default: the file's name + "-evidence")
    BENCH_PG_TEMPLATE     an existing PostgreSQL database to copy from (not modified), with
    BENCH_PG_EVIDENCE     its evidence directory
    BENCH_ONLY            comma-separated benchmark names to run (default: all)
    BENCH_TIMEOUT         seconds one benchmark may take (default 1200)
    BENCH_ARGS_<NAME>     extra options for one benchmark (e.g. BENCH_ARGS_PAGES=
                          "--duration 10"); see DEFAULT_ARGS

Writes benchmarks/results.json and the table between the bench markers at the top of
benchmarks/RESULTS.md (the rest of that file is left as it is).

    .venv/bin/python benchmarks/run_all.py [--only a,b] [--no-postgres] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    Record,
    check_record,
    load_average,
    read_records,
    record,
)

BIN = Path(sys.executable).parent
CACHE_DIR = ROOT / "instance" / "bench"
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "results.json"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
# Modules here that are not benchmarks.
SUPPORT = {"common", "loadgen", "run_all", "__init__"}
# When a benchmark runs among the rest (the others by name, between; see run_plan): the
# pages' in-process ratios are the most sensitive figures, and they read 10-30% worse in
# the minutes after heavy work, database or not (benchmarks/HISTORY.md, twelfth session),
# so they run first, on every database; the million-row import, the heaviest, runs last,
# on every database.
RUN_ORDER = {"pages": 0, "import_incidents": 2}
DEMO_SOURCE = ROOT / "licensing" / "demo_large.py"
# Extra options per benchmark and database, to keep one database's run well under 15
# minutes. None now: the PostgreSQL import, cut to 100,000 rows while it ran at a few
# hundred rows/s (until 2026-12-03), takes the full 1,000,000 since it writes by COPY
# (about 20,000 rows/s, under two minutes with its bare insert).
# BENCH_ARGS_<NAME> (e.g. BENCH_ARGS_IMPORT_INCIDENTS="--rows 100000") adds some.
DEFAULT_ARGS: dict[tuple[str, str], list[str]] = {}


# ---- which benchmarks --------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """A script in benchmarks/ and the database it wants ("large" or "fresh")."""

    name: str
    path: Path
    data: str


def discover(directory: Path = HERE) -> list[Benchmark]:
    """Every benchmark script in `directory`, in the order they run (RUN_ORDER, then by
    name); its DATA line says what it needs."""
    found = []
    for path in sorted(directory.glob("*.py")):
        if path.stem in SUPPORT or path.stem.startswith("_"):
            continue
        match = re.search(
            r"""^DATA\s*(?::\s*\w+\s*)?=\s*["'](large|fresh)["']""",
            path.read_text(encoding="utf-8"),
            re.MULTILINE,
        )
        found.append(Benchmark(path.stem, path, match.group(1) if match else "large"))
    return sorted(found, key=lambda b: (run_rank(b), b.name))


def run_rank(benchmark: Benchmark) -> int:
    """Where the benchmark's runs come among the rest: RUN_ORDER's, or 1 (between)."""
    return RUN_ORDER.get(benchmark.name, 1)


def run_plan(
    benchmarks: Sequence[Benchmark], databases: Sequence[str]
) -> list[tuple[Benchmark, str]]:
    """Each benchmark on each database, in the order they run: by RUN_ORDER first (so
    the pages run on every database before the import runs on any), then database by
    database in the order given, then as `discover` ordered them."""
    position = {b.name: i for i, b in enumerate(benchmarks)}
    return sorted(
        ((b, d) for d in databases for b in benchmarks),
        key=lambda pair: (run_rank(pair[0]), databases.index(pair[1]), position[pair[0].name]),
    )


# ---- the machine ---------------------------------------------------------------------------


def machine_description(pg_version: str | None) -> dict[str, str]:
    """What the figures were measured on, read now."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        ram = f"{kib / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version or "not run",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_average(),
    }


# ---- the cached data set -------------------------------------------------------------------


def demo_hash() -> str:
    """A hash of the loader: a different loader makes a different data set."""
    return hashlib.sha256(DEMO_SOURCE.read_bytes()).hexdigest()[:16]


@dataclass
class DataSet:
    """Where a benchmark's copies come from, and what the output should say about it."""

    source: str  # a SQLite file path, or a PostgreSQL database name
    evidence: Path
    upgrade_copies: bool  # a data set given from outside is not touched: its copies are
    description: str


def _run_cli(args: Sequence[str], url: str, evidence: Path) -> None:
    env = {
        **os.environ,
        "LICENSING_ENV": "development",
        "DATABASE_URL": url,
        "EVIDENCE_DIR": str(evidence),
    }
    subprocess.run([str(BIN / "licensing"), *args], env=env, check=True, cwd=ROOT)  # noqa: S603


def _upgrade(url: str) -> None:
    from licensing.cli import upgrade_database

    upgrade_database(url)


def _valid(marker: dict[str, Any] | None, seed: int, scale: str) -> tuple[bool, str]:
    """Whether a marker matches this seed, scale and loader; and what to say about it."""
    if marker is None:
        return False, "no cache"
    if marker.get("seed") != seed or marker.get("scale") != scale:
        return False, "a different seed or scale"
    if marker.get("hash") != demo_hash():
        if os.environ.get("BENCH_REUSE_DATA") == "1":
            return True, (
                f"cached, built {marker.get('built')} by another version of demo_large.py "
                f"(hash {marker.get('hash')}, now {demo_hash()}): reused as BENCH_REUSE_DATA=1"
            )
        return False, "built by another version of demo_large.py"
    return True, f"cached, built {marker.get('built')} (seed {seed}, loader hash {demo_hash()})"


def sqlite_dataset(scale: str, seed: int) -> DataSet:
    """The SQLite data set: BENCH_SQLITE_DATA, or the cache (built when missing or stale)."""
    given = os.environ.get("BENCH_SQLITE_DATA")
    if given:
        path = Path(given).resolve()
        evidence = Path(
            os.environ.get("BENCH_SQLITE_EVIDENCE") or path.with_name(path.stem + "-evidence")
        )
        if not path.is_file():
            raise SystemExit(f"BENCH_SQLITE_DATA: no file {path}")
        return DataSet(str(path), evidence, True, f"given by BENCH_SQLITE_DATA: {path}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"{scale}-{seed}.sqlite"
    evidence = CACHE_DIR / f"{scale}-{seed}-evidence"
    marker_path = path.with_suffix(".json")
    marker = json.loads(marker_path.read_text()) if marker_path.is_file() else None
    usable, why = _valid(marker, seed, scale) if path.is_file() else (False, "no cache")
    if not usable:
        print(f"[bench] building the {scale} SQLite data set (seed {seed}): {why}", flush=True)
        started = time.perf_counter()
        building = path.with_suffix(".building")
        for stale in [building, *building.parent.glob(building.name + "-*")]:
            stale.unlink(missing_ok=True)
        shutil.rmtree(evidence, ignore_errors=True)
        url = f"sqlite:///{building}"
        _run_cli(["db", "upgrade"], url, evidence)
        _run_cli(["demo", "load", "--scale", scale, "--seed", str(seed)], url, evidence)
        _checkpoint(building)
        for stale in [path, *path.parent.glob(path.name + "-*")]:
            stale.unlink(missing_ok=True)
        building.rename(path)
        built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        marker = {"seed": seed, "scale": scale, "hash": demo_hash(), "built": built}
        marker_path.write_text(json.dumps(marker) + "\n")
        why = f"built now in {time.perf_counter() - started:.0f} s (seed {seed})"
    _upgrade(f"sqlite:///{path}")
    _checkpoint(path)
    return DataSet(str(path), evidence, False, f"{scale}, {path.relative_to(ROOT)}: {why}")


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the file, so that a copy of the file alone is the whole database."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def _pg_admin(server_url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(server_url, isolation_level="AUTOCOMMIT")


def _pg_url(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _pg_exists(admin: Any, name: str) -> bool:
    from sqlalchemy import text

    with admin.connect() as conn:
        return bool(conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}))


def _pg_drop(admin: Any, name: str) -> None:
    from sqlalchemy import text

    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def pg_dataset(server_url: str, scale: str, seed: int) -> DataSet:
    """The PostgreSQL template: BENCH_PG_TEMPLATE, or the cache (built when missing or
    stale) with its marker in the database's comment."""
    from sqlalchemy import text

    admin = _pg_admin(server_url)
    given = os.environ.get("BENCH_PG_TEMPLATE")
    if given:
        if not _pg_exists(admin, given):
            raise SystemExit(f"BENCH_PG_TEMPLATE: no database {given}")
        evidence = Path(os.environ.get("BENCH_PG_EVIDENCE") or CACHE_DIR / f"{given}-evidence")
        return DataSet(given, evidence, True, f"given by BENCH_PG_TEMPLATE: database {given}")
    name = f"licensing_bench_{scale}_{seed}"
    evidence = CACHE_DIR / f"pg-{scale}-{seed}-evidence"
    marker = None
    if _pg_exists(admin, name):
        with admin.connect() as conn:
            comment = conn.scalar(
                text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
                    " WHERE datname = :n"
                ),
                {"n": name},
            )
        try:
            marker = json.loads(comment or "")
        except ValueError:
            marker = None
        usable, why = _valid(marker, seed, scale)
    else:
        usable, why = False, "no cache"
    if not usable:
        print(f"[bench] building the {scale} PostgreSQL data set (seed {seed}): {why}", flush=True)
        started = time.perf_counter()
        building = name + "_building"
        _pg_drop(admin, building)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{building}"'))
        shutil.rmtree(evidence, ignore_errors=True)
        url = _pg_url(server_url, building)
        _run_cli(["db", "upgrade"], url, evidence)
        _run_cli(["demo", "load", "--scale", scale, "--seed", str(seed)], url, evidence)
        _pg_drop(admin, name)
        built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        marker = {"seed": seed, "scale": scale, "hash": demo_hash(), "built": built}
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
            literal = json.dumps(marker).replace("'", "''")
            conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{literal}'"))
        why = f"built now in {time.perf_counter() - started:.0f} s (seed {seed})"
    _upgrade(_pg_url(server_url, name))
    admin.dispose()
    return DataSet(name, evidence, False, f"{scale}, database {name}: {why}")


def pg_version(server_url: str) -> str:
    """The server's version, as it reports it."""
    from sqlalchemy import text

    admin = _pg_admin(server_url)
    try:
        with admin.connect() as conn:
            return str(conn.scalar(text("SHOW server_version")))
    finally:
        admin.dispose()


# ---- a database for one benchmark ------------------------------------------------------------


def _link_tree(source: Path, target: Path) -> None:
    """A copy of the evidence store whose files are hard links (they are never changed in
    place), falling back to real copies across file systems."""
    if not source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    try:
        shutil.copytree(source, target, copy_function=os.link)
    except (OSError, shutil.Error):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)


@contextmanager
def sqlite_copy(data: DataSet | None, workdir: Path, name: str) -> Iterator[tuple[str, Path]]:
    """(URL, evidence dir) of a copy of the data set, or of a new empty file when `data`
    is None; removed afterwards."""
    path = workdir / f"{name}.sqlite"
    evidence = workdir / f"{name}-evidence"
    try:
        if data is None:
            evidence.mkdir(parents=True)
        else:
            shutil.copyfile(data.source, path)
            wal = Path(data.source + "-wal")
            if wal.is_file() and wal.stat().st_size:
                shutil.copyfile(wal, Path(str(path) + "-wal"))
            _link_tree(data.evidence, evidence)
            if data.upgrade_copies:
                _upgrade(f"sqlite:///{path}")
        yield f"sqlite:///{path}", evidence
    finally:
        for stale in [path, *workdir.glob(path.name + "-*")]:
            stale.unlink(missing_ok=True)
        shutil.rmtree(evidence, ignore_errors=True)


def _create_from_template(conn: Any, database: str, template: str, wait: float = 60) -> None:
    """CREATE DATABASE ... TEMPLATE, retried for up to `wait` seconds while another
    session is still connected to the template (PostgreSQL refuses to copy it then)."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{template}"'))
            return
        except OperationalError as error:
            if "being accessed by other users" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(2)


@contextmanager
def pg_copy(
    server_url: str, data: DataSet | None, workdir: Path, name: str
) -> Iterator[tuple[str, Path]]:
    """(URL, evidence dir) of a new database made from the template, or empty when `data`
    is None; dropped afterwards."""
    from sqlalchemy import text

    admin = _pg_admin(server_url)
    database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    evidence = workdir / f"{database}-evidence"
    try:
        with admin.connect() as conn:
            if data is None:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
                evidence.mkdir(parents=True)
            else:
                _create_from_template(conn, database, data.source)
                _link_tree(data.evidence, evidence)
        url = _pg_url(server_url, database)
        if data is not None and data.upgrade_copies:
            _upgrade(url)
        _pg_checkpoint(admin)
        yield url, evidence
    finally:
        _pg_drop(admin, database)
        _pg_checkpoint(admin)
        admin.dispose()
        shutil.rmtree(evidence, ignore_errors=True)


def _pg_checkpoint(admin: Any) -> None:
    """Write out what the server has in hand now, before a benchmark starts. Copying the
    template and a million-row import each leave gigabytes of WAL, and the checkpoint
    they set off is spread over minutes (checkpoint_completion_target): left alone, its
    writes run during the next benchmark. Needs superuser (or pg_checkpoint); without
    it the benchmarks run as before."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with admin.connect() as conn:
            conn.execute(text("CHECKPOINT"))
    except DBAPIError as error:
        print(f"[bench] CHECKPOINT refused ({error.orig}); going on", flush=True)


# ---- running one --------------------------------------------------------------------------


def run_one(
    benchmark: Benchmark, database: str, url: str, evidence: Path, workdir: Path, timeout: float
) -> list[Record]:
    """Run one benchmark in its own process; its records, or one saying how it failed."""
    out = workdir / f"{benchmark.name}-{database}.json"
    out.unlink(missing_ok=True)
    argv = [
        sys.executable,
        str(benchmark.path),
        "--database-url",
        url,
        "--evidence-dir",
        str(evidence),
        "--json",
        str(out),
        *extra_args(benchmark.name, database),
    ]
    print(f"\n[bench] {benchmark.name} on {database} ({benchmark.data} data)", flush=True)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        completed = subprocess.run(argv, cwd=ROOT, env=env, timeout=timeout, check=False)  # noqa: S603
        code = completed.returncode
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.perf_counter() - started
    print(f"[bench] {benchmark.name} on {database}: {seconds:.0f} s, exit {code}", flush=True)
    problem = None
    records: list[Record] = []
    if code is None:
        problem = f"stopped after the {timeout:.0f} s time limit"
    elif code != 0:
        problem = f"exited with status {code} (its output is above in the run's log)"
    elif not out.is_file():
        problem = "wrote no results (--json)"
    else:
        try:
            records = read_records(out)
        except ValueError as error:
            problem = f"wrote malformed results: {error}"
        else:
            wrong = {r["database"] for r in records} - {database}
            if wrong:
                problem = f"reported results for {sorted(wrong)} when run on {database}"
    if problem:
        return [failure(benchmark.name, database, problem)]
    return records


def extra_args(name: str, database: str) -> list[str]:
    """The options added for this benchmark on this database (see DEFAULT_ARGS)."""
    given = os.environ.get(f"BENCH_ARGS_{name.upper()}")
    if given is not None:
        return shlex.split(given)
    return list(DEFAULT_ARGS.get((name, database), []))


def failure(name: str, database: str, problem: str) -> Record:
    """The row that stands for a benchmark that gave no figures."""
    return record(name, database, "run failed", 0.0, "", met=False, notes=problem)


# ---- the table -----------------------------------------------------------------------------


def number(value: float | None) -> str:
    """A figure to about three significant figures, thousands separated."""
    if value is None:
        return "–"
    if value != value:  # NaN
        return "n/a"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(machine: dict[str, str], records: Sequence[Record], data: Sequence[str]) -> str:
    """The table and the machine description, as Markdown (the text between the markers)."""
    lines = [
        "## `make bench`",
        "",
        f"Generated by `benchmarks/run_all.py` on {machine.get('date', '?')}. "
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('ram', '?')} RAM, {machine.get('kernel', '?')}; "
        f"Python {machine.get('python', '?')}, SQLite {machine.get('sqlite', '?')}, "
        f"PostgreSQL {machine.get('postgresql', '?')}. "
        f"Load average (1, 5, 15 min) before: {machine.get('load_before', '?')}; "
        f"after: {machine.get('load_after', '?')}.",
        "",
    ]
    for line in data:
        lines.append(f"- Data set: {line}")
    if data:
        lines.append("")
    lines += [
        "| benchmark | database | measure | figure | bare | ratio | target | met | notes |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in records:
        unit = f" {r['unit']}" if r["unit"] else ""
        met = {True: "**yes**", False: "**no**", None: "–"}[r["met"]]
        lines.append(
            "| "
            + " | ".join(
                _cell(v)
                for v in (
                    r["benchmark"],
                    r["database"],
                    r["measure"],
                    f"{number(r['figure'])}{unit}",
                    f"{number(r['bare'])}{unit}" if r["bare"] is not None else "–",
                    f"{r['ratio']:.2f}" if r["ratio"] is not None else "–",
                    r["target"] or "–",
                    met,
                    r["notes"],
                )
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def results_document(
    machine: dict[str, str], records: Sequence[Record], data: Sequence[str]
) -> dict[str, Any]:
    """What benchmarks/results.json holds."""
    return {"machine": machine, "data_sets": list(data), "records": list(records)}


def update_results_file(path: Path, block: str) -> None:
    """Put `block` between the bench markers in `path`; the first time, the markers go
    after the file's first paragraph under its title (its machine note). The rest of the
    file is kept as it is."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    wrapped = f"{START}\n{block.rstrip()}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _old, tail = rest.split(END, 1)
        path.write_text(head + wrapped + tail, encoding="utf-8")
        return
    # After the title and the paragraph that follows it (or at the end of a short file).
    match = re.search(r"\A(#[^\n]*\n(?:\n(?:[^\n]+\n)*)?)", text)
    cut = match.end() if match else 0
    head, tail = text[:cut], text[cut:]
    path.write_text(head + "\n" + wrapped + "\n\n" + tail.lstrip("\n"), encoding="utf-8")


# ---- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, write results.json and RESULTS.md."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--scale", default=os.environ.get("BENCH_SCALE", "large"))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("BENCH_SEED", "2026")))
    parser.add_argument("--json", default=str(RESULTS_JSON))
    parser.add_argument("--results", default=str(RESULTS_MD))
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="RESULTS_JSON",
        help="run nothing: merge earlier runs' results.json files (SQLite and PostgreSQL run"
        " at different times, say) into one table",
    )
    args = parser.parse_args(argv)
    if args.merge:
        machine, records, data_lines = merge_documents(
            [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.merge]
        )
        return write_outputs(args, machine, records, data_lines)
    # Stopped with SIGTERM, clean up as on Ctrl-C: copies and servers are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    benchmarks = discover()
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {b.name for b in benchmarks}
        if unknown:
            raise SystemExit(f"no such benchmark: {', '.join(sorted(unknown))}")
        benchmarks = [b for b in benchmarks if b.name in wanted]
    server_url = os.environ.get("DATABASE_URL", "")
    databases = [] if args.no_sqlite else ["sqlite"]
    if server_url.startswith("postgresql") and not args.no_postgres:
        databases.append("postgresql")
    if not databases:
        raise SystemExit("nothing to run on")
    timeout = float(os.environ.get("BENCH_TIMEOUT", "1200"))

    machine = machine_description(pg_version(server_url) if "postgresql" in databases else None)
    print(
        f"[bench] {', '.join(b.name for b in benchmarks)} on {', '.join(databases)};"
        f" load average {machine['load_before']}",
        flush=True,
    )
    workdir = CACHE_DIR / "runs" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    records: list[Record] = []
    data_lines: list[str] = []
    try:
        # Every data set first (building one is the heaviest work of all), then the runs.
        datasets: dict[str, DataSet] = {}
        if any(b.data == "large" for b in benchmarks):
            for database in databases:
                data = (
                    sqlite_dataset(args.scale, args.seed)
                    if database == "sqlite"
                    else pg_dataset(server_url, args.scale, args.seed)
                )
                datasets[database] = data
                data_lines.append(f"{database}: {data.description}")
                print(f"[bench] data set on {database}: {data.description}", flush=True)
        for benchmark, database in run_plan(benchmarks, databases):
            source = datasets.get(database) if benchmark.data == "large" else None
            copy = (
                sqlite_copy(source, workdir, benchmark.name)
                if database == "sqlite"
                else pg_copy(server_url, source, workdir, benchmark.name)
            )
            try:
                with copy as (url, evidence):
                    records += run_one(benchmark, database, url, evidence, workdir, timeout)
            except Exception as error:  # noqa: BLE001 - one benchmark's set-up failing
                records.append(failure(benchmark.name, database, f"set-up failed: {error}"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    machine["load_after"] = load_average()
    return write_outputs(args, machine, records, data_lines)


def merge_documents(
    documents: Sequence[dict[str, Any]],
) -> tuple[dict[str, str], list[Record], list[str]]:
    """One run's worth from several results.json documents: every record and data set; the
    machine of the first, with each run's date and load averages listed."""
    if not documents:
        raise ValueError("nothing to merge")
    records: list[Record] = []
    data_lines: list[str] = []
    for document in documents:
        records += [check_record(r) for r in document["records"]]
        data_lines += list(document.get("data_sets", []))
    machine = dict(documents[0]["machine"])
    if len(documents) > 1:
        runs = [d["machine"] for d in documents]
        machine["date"] = ", ".join(m.get("date", "?") for m in runs)
        machine["load_before"] = "; ".join(m.get("load_before", "?") for m in runs)
        machine["load_after"] = "; ".join(m.get("load_after", "?") for m in runs)
        versions = [m.get("postgresql") for m in runs if m.get("postgresql") != "not run"]
        machine["postgresql"] = versions[0] if versions else "not run"
    return machine, records, data_lines


def write_outputs(
    args: argparse.Namespace, machine: dict[str, str], records: list[Record], data: list[str]
) -> int:
    """Print the table; unless --no-write, write results.json and the RESULTS.md block."""
    block = render_markdown(machine, records, data)
    print()
    print(block)
    if not args.no_write:
        Path(args.json).write_text(
            json.dumps(results_document(machine, records, data), indent=2, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        update_results_file(Path(args.results), block)
        print(f"[bench] wrote {args.json} and the table in {args.results}")
    return 1 if any(r["measure"] == "run failed" for r in records) else 0


if __name__ == "__main__":
    raise SystemExit(main())
