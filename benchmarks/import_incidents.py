"""Benchmark: importing data.police.uk rows with linking, against a bare executemany.

Synthesises N data.police.uk street-level rows (default 1,000,000) and P premises
(default 10,000) around real-looking snap points, then in one run on one database:

1. imports the file through `import_incidents` (parse, dedupe, insert, link by proximity);
2. inserts the same parsed rows with a bare `executemany` through the same driver into an
   empty copy of the incidents table;

and prints rows/s for each and their ratio. Targets (issue 3): at least 50,000 rows/s
with linking on SQLite, and at least half the bare-insert rate.

On SQLite the bare insert goes into a copy of the database taken just before the import
(premises loaded, no incidents), opened through the app's engine with the page cache the
importer gives itself: both start from the same state, and neither inherits the other's
rows, indexes or WAL file.

On SQLite a file this large is read in a second process while the importer writes
(`licensing/incidents/parallel.py`); `--second-process never` measures the import in one
process, `always` forces the second process on a smaller file.

`--database-url` (or `--database`) names an empty database to work in instead of a
temporary SQLite file (`make bench` gives it a new one: DATA = "fresh"); `--json PATH`
writes the figures as records (benchmarks/common.py).

    .venv/bin/python benchmarks/import_incidents.py [--rows N] [--premises P] [--database URL]
        [--second-process auto|never|always] [--database-url URL --evidence-dir DIR --json PATH]
"""

from __future__ import annotations

import argparse
import atexit
import io
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from benchmarks.common import add_common_options, database_kind, record, write_records  # noqa: E402
from licensing import create_app  # noqa: E402
from licensing.auth.services import create_authority  # noqa: E402
from licensing.cli import upgrade_database  # noqa: E402
from licensing.db import get_session  # noqa: E402
from licensing.incidents.importer import (  # noqa: E402
    _SQLITE_IMPORT_CACHE_KIB,
    POLICE_UK_COLUMNS,
    ROW_FIELDS,
    import_incidents,
    parse_police_uk,
)
from licensing.incidents.models import POLICE_UK_CATEGORIES  # noqa: E402

# What `make bench` gives it (benchmarks/run_all.py): an empty database of its own.
DATA = "fresh"
CENTRE = (53.4064, -2.9812)
PLACES = [
    "Nightclub",
    "Pub / Bar",
    "Supermarket",
    "Petrol Station",
    "Parking Area",
    "Shopping Area",
]


def synthesise(rows: int, premises: int, seed: int) -> tuple[bytes, list[tuple[float, float]]]:
    """A data.police.uk-format CSV of `rows` rows and `premises` premises positions."""
    rng = random.Random(seed)
    # Snap points: shared positions, as data.police.uk anonymises to them; twice as many
    # as premises, and half of them within about 25 m of a premises, so about half the
    # incidents fall near one (a busy night-time economy).
    points = [
        (
            round(CENTRE[0] + rng.uniform(-0.25, 0.25), 6),
            round(CENTRE[1] + rng.uniform(-0.35, 0.35), 6),
        )
        for _ in range(max(premises * 2, 100))
    ]
    premises_positions = [
        (lat + rng.uniform(-0.0002, 0.0002), lon + rng.uniform(-0.0002, 0.0002))
        for lat, lon in rng.sample(points, min(premises, len(points)))
    ]
    out = io.StringIO()
    out.write(",".join(POLICE_UK_COLUMNS) + "\r\n")
    for i in range(rows):
        crime = rng.choice(POLICE_UK_CATEGORIES)
        month = f"20{19 + (i * 36 // rows) // 12}-{(i * 36 // rows) % 12 + 1:02d}"
        crime_id = "" if crime == "Anti-social behaviour" else f"{i:064x}"
        if rng.random() < 0.02:
            lon_text = lat_text = ""
        else:
            lat, lon = rng.choice(points)
            lat_text, lon_text = f"{lat:.6f}", f"{lon:.6f}"
        place = rng.choice(PLACES)
        out.write(
            f"{crime_id},{month},Merseyside Police,Merseyside Police,{lon_text},{lat_text},"
            f"On or near {place},E0100{i % 9999:04d},Liverpool {i % 300:03d}A,{crime},"
            f"{'' if crime_id == '' else 'Investigation complete; no suspect identified'},\r\n"
        )
    return out.getvalue().encode("utf-8"), premises_positions


class PathTaken(logging.Handler):
    """Notes whether the importer said it read the file in a second process."""

    second_process = False

    def emit(self, record: logging.LogRecord) -> None:
        """Note a record of the importer's."""
        if "second process" in record.getMessage():
            self.second_process = True


class OtherWork:
    """The CPU time other processes on the machine used while we measured (Linux: from
    /proc/stat, less this process's and its children's), so that each figure can be read
    with how busy the machine was."""

    def __init__(self) -> None:
        self.busy, self.own = self._busy(), self._own()
        self.started = time.perf_counter()

    @staticmethod
    def _busy() -> float | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except OSError:
            return None
        return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    def cores(self) -> str:
        """How many cores' worth of CPU the others used, on average."""
        busy = self._busy()
        if busy is None or self.busy is None:
            return "unknown"
        others = (busy - self.busy) - (self._own() - self.own)
        return f"{max(others, 0.0) / (time.perf_counter() - self.started):.2f}"


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--premises", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--second-process", choices=("auto", "never", "always"), default="auto")
    add_common_options(parser)
    args = parser.parse_args()
    args.database = args.database_url or args.database
    second_process = {"auto": None, "never": False, "always": True}[args.second_process]

    workdir = tempfile.mkdtemp(prefix="bench-import-")
    atexit.register(shutil.rmtree, workdir, True)  # about 1 GB per run at the default size
    url = args.database or f"sqlite:///{workdir}/bench.db"
    upgrade_database(url)
    app = create_app({"ENV_NAME": "testing", "DATABASE_URL": url})

    started = time.perf_counter()
    data, positions = synthesise(args.rows, args.premises, args.seed)
    print(
        f"synthesised {args.rows:,} rows ({len(data) / 1e6:.0f} MB) and {args.premises:,} premises in {time.perf_counter() - started:.1f}s"
    )

    with app.app_context():
        session = get_session()
        authority = create_authority(session, "BEN", "Benchmark Council")
        session.execute(
            text(
                "INSERT INTO premises (authority_id, licence_number, name, address, postcode, latitude, longitude,"
                " licence_holder, dps, licensable_activities, opening_hours, licence_status, state, version,"
                " created_at, updated_at) VALUES (:a, :n, :name, '', '', :lat, :lon, '', '', '', '', 'current',"
                " 'monitored', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            [
                {
                    "a": authority.id,
                    "n": f"BEN/{i}",
                    "name": f"Premises {i}",
                    "lat": lat,
                    "lon": lon,
                }
                for i, (lat, lon) in enumerate(positions)
            ],
        )
        session.commit()
        sqlite = session.get_bind().dialect.name == "sqlite"
        bare_url = url
        if sqlite:
            # The bare insert gets its own copy of this database as it is now (premises,
            # no incidents), so neither run inherits the other's rows, indexes or WAL.
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            session.commit()
            bare_path = Path(workdir) / "bare.db"
            database_path = session.get_bind().url.database  # the given file, or ours
            shutil.copyfile(str(database_path), bare_path)
            bare_url = f"sqlite:///{bare_path}"

        load_before = load_average()
        # Which way the import read the file: it logs when it uses a second process.
        paths = PathTaken()
        logging.getLogger("licensing.incidents.importer").addHandler(paths)
        logging.getLogger("licensing.incidents.importer").setLevel(logging.INFO)
        import_others = OtherWork()
        started = time.perf_counter()
        result = import_incidents(
            session, data, "bench.csv", "police-uk", None, second_process=second_process
        )
        import_seconds = time.perf_counter() - started
        import_others_cores = import_others.cores()
        print(f"import with linking: {result.summary()}")

        # The bare comparison: the same parsed rows, one executemany, same driver and database.
        from collections import Counter

        from licensing.csvfiles import decode_text, read_rows

        _header, rows = read_rows(decode_text(data))
        occurrences: Counter[str] = Counter()
        parsed = []
        for row in rows:
            try:
                parsed.append(parse_police_uk(row.values, occurrences))
            except Exception:  # noqa: S112 - the same rows the import rejected
                continue
    # Into the same incidents table (same constraints, indexes and foreign keys) of an
    # identical database: on SQLite the copy taken before the import, opened through the
    # app's engine (same driver, same PRAGMAs); elsewhere the same database, as source
    # "manual" so the rows do not collide with the imported ones. One plain executemany
    # of full 20-column rows: the baseline the issue defines.
    bare_app = create_app({"ENV_NAME": "testing", "DATABASE_URL": bare_url}) if sqlite else app
    with bare_app.app_context():
        session = get_session()
        connection = session.connection()
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        sqlite = connection.dialect.name == "sqlite"
        placeholder = "?" if sqlite else "%s"
        columns = ["id", *ROW_FIELDS, "import_run_id", "created_at"]
        sql = (
            f"INSERT INTO incidents ({', '.join(columns)}) "
            f"VALUES ({', '.join([placeholder] * len(columns))})"
        )
        run_id = result.run_id
        if bare_app is not app:
            # The copy needs its own run row for the foreign key, and the page cache the
            # importer gives itself, so the two inserts run on equal terms.
            cursor.execute(f"PRAGMA cache_size = -{_SQLITE_IMPORT_CACHE_KIB}")
            cursor.execute(
                "INSERT INTO incident_import_runs (file_name, sha256, format, started_at,"
                " rows_read, created, duplicate, rejected, linked, suggested)"
                " VALUES ('bare', '', 'police-uk', CURRENT_TIMESTAMP, 0, 0, 0, 0, 0, 0)"
            )
            run_id = cursor.lastrowid
            dbapi.commit()
        cursor.execute("SELECT MAX(id) FROM incidents")
        first_id = (cursor.fetchone()[0] or 0) + 1
        now = datetime.now(UTC).replace(tzinfo=None)

        def adapt(value: object) -> object:
            if isinstance(value, datetime):
                naive = value.astimezone(UTC).replace(tzinfo=None)
                return naive.isoformat(" ", timespec="microseconds") if sqlite else naive
            return value

        values = [
            (
                first_id + n,
                "manual",
                *(adapt(v) for v in row[1:]),
                run_id,
                adapt(now.replace(tzinfo=UTC)),
            )
            for n, row in enumerate(parsed)
        ]
        bare_others = OtherWork()
        started = time.perf_counter()
        cursor.executemany(sql, values)
        session.commit()
        bare_seconds = time.perf_counter() - started
        bare_others_cores = bare_others.cores()

    import_rate = result.read / import_seconds
    bare_rate = len(values) / bare_seconds
    print()
    print("| measure | rows | seconds | rows/s |")
    print("|---|---:|---:|---:|")
    print(f"| import with linking | {result.read:,} | {import_seconds:.2f} | {import_rate:,.0f} |")
    print(f"| bare executemany | {len(values):,} | {bare_seconds:.2f} | {bare_rate:,.0f} |")
    print(
        f"ratio import/bare: {import_rate / bare_rate:.2f} (target >= 0.5); target import rate 50,000 rows/s on SQLite"
    )
    print(
        f"second process: {args.second_process} (used: {'yes' if paths.second_process else 'no'});"
        f" load average before the import: {load_before},"
        f" after the bare insert: {load_average()}; other processes' CPU use (cores):"
        f" {import_others_cores} during the import, {bare_others_cores} during the bare insert"
    )
    ratio = import_rate / bare_rate
    write_records(
        args.json,
        [
            record(
                "import_incidents",
                database_kind(url),
                f"import of {result.read:,} data.police.uk rows with linking",
                import_rate,
                "rows/s",
                bare=bare_rate,
                # Issue 3's targets are SQLite's; none is set for PostgreSQL.
                target=">= 50,000 rows/s and >= 0.5 of bare" if sqlite else "",
                met=(import_rate >= 50_000 and ratio >= 0.5) if sqlite else None,
                notes=f"import {import_seconds:.1f} s, bare executemany {bare_seconds:.1f} s;"
                f" second process {'used' if paths.second_process else 'not used'};"
                f" other processes' CPU {import_others_cores} cores during the import",
            )
        ],
    )


def load_average() -> str:
    """The 1, 5 and 15-minute load averages."""
    try:
        return " ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
