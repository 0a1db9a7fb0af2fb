"""The `make bench` runner's merging and table (benchmarks/run_all.py): records in,
Markdown and JSON out. Nothing here times anything."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import run_all
from benchmarks.common import check_record, read_records, record, write_records

MACHINE = {
    "cpu": "Test CPU",
    "cores": "2",
    "ram": "4.0 GiB",
    "kernel": "Linux 6.1",
    "python": "3.11.7",
    "sqlite": "3.40.1",
    "postgresql": "15.20",
    "date": "2026-12-03 12:00 UTC",
    "load_before": "0.10 0.20 0.30",
    "load_after": "1.10 1.20 1.30",
}


def sample_records() -> list:
    """Two benchmarks on two databases, with and without a bare figure."""
    return [
        record(
            "import_incidents",
            "sqlite",
            "import with linking",
            91_234.5,
            "rows/s",
            bare=121_000.0,
            target=">= 0.5 of bare",
            met=True,
            notes="second process used",
        ),
        record(
            "pages",
            "postgresql",
            "dashboard: p95 at 20 req/s",
            143.25,
            "ms",
            target="p95 < 100 ms",
            met=False,
            notes="a | in the notes",
        ),
        record("build_bundle", "sqlite", "build", 30.8, "s"),
    ]


def test_record_works_out_the_ratio_and_checks_the_database() -> None:
    made = record("x", "sqlite", "m", 30.0, "ms", bare=10.0)
    assert made["ratio"] == pytest.approx(3.0)
    assert record("x", "sqlite", "m", 30.0, "ms")["ratio"] is None
    assert record("x", "sqlite", "m", 30.0, "ms", bare=0.0)["ratio"] is None
    with pytest.raises(ValueError, match="sqlite or postgresql"):
        record("x", "mysql", "m", 1.0, "ms")


def test_malformed_records_are_refused() -> None:
    good = dict(record("x", "sqlite", "m", 1.0, "ms"))
    assert check_record(good) == good
    for change, message in (
        ({"figure": "fast"}, "not a number"),
        ({"database": "oracle"}, "database"),
        ({"met": "yes"}, "met"),
        ({"extra": 1}, "unexpected"),
    ):
        with pytest.raises(ValueError, match=message):
            check_record({**good, **change})
    missing = dict(good)
    del missing["notes"]
    with pytest.raises(ValueError, match="missing"):
        check_record(missing)


def test_records_round_trip_through_json(tmp_path: Path) -> None:
    path = tmp_path / "out" / "records.json"
    write_records(path, sample_records())
    assert read_records(path) == sample_records()
    assert json.loads(path.read_text())[0]["unit"] == "rows/s"


def test_markdown_table_has_one_row_per_record_with_units_ratio_and_verdict() -> None:
    text = run_all.render_markdown(MACHINE, sample_records(), ["sqlite, large: cached"])
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| benchmark | database | measure | figure | bare | ratio |")
    body = rows[1:]
    assert len(body) == 3
    assert body[0].split(" | ")[3:8] == [
        "91,234 rows/s",
        "121,000 rows/s",
        "0.75",
        ">= 0.5 of bare",
        "**yes**",
    ]
    assert "143 ms" in body[1] and "**no**" in body[1]
    assert "a \\| in the notes" in body[1]  # a pipe in the notes does not split the row
    assert body[2].split(" | ")[3:8] == ["30.8 s", "–", "–", "–", "–"]
    # The machine, both load averages and the data set are described.
    for fact in ("Test CPU", "2 cores", "4.0 GiB", "SQLite 3.40.1", "PostgreSQL 15.20"):
        assert fact in text
    assert "before: 0.10 0.20 0.30" in text and "after: 1.10 1.20 1.30" in text
    assert "- Data set: sqlite, large: cached" in text


def test_results_json_holds_machine_data_sets_and_records() -> None:
    document = run_all.results_document(MACHINE, sample_records(), ["pg: cached"])
    parsed = json.loads(json.dumps(document, allow_nan=False))
    assert parsed["machine"]["cpu"] == "Test CPU"
    assert parsed["data_sets"] == ["pg: cached"]
    assert [r["benchmark"] for r in parsed["records"]] == [
        "import_incidents",
        "pages",
        "build_bundle",
    ]


def test_results_file_keeps_other_sections_and_replaces_only_the_block(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(
        "# Benchmark results\n\nMachine: a note\nover two lines.\n\n## Import\n\nNarrative.\n"
    )
    run_all.update_results_file(path, "TABLE ONE\n")
    first = path.read_text()
    assert first.index("over two lines.") < first.index(run_all.START)
    assert first.index(run_all.END) < first.index("## Import")
    assert "TABLE ONE" in first and "Narrative." in first

    run_all.update_results_file(path, "TABLE TWO\n")
    second = path.read_text()
    assert "TABLE ONE" not in second and "TABLE TWO" in second
    assert second.count(run_all.START) == 1
    assert second.replace("TABLE TWO", "TABLE ONE") == first


def test_results_file_made_when_missing_puts_the_block_under_the_title(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    run_all.update_results_file(path, "TABLE\n")
    text = path.read_text()
    assert text.startswith("# Benchmark results\n")
    assert text.index("# Benchmark results") < text.index(run_all.START) < text.index("TABLE")


def test_discover_reads_each_benchmarks_data_and_skips_support_modules(tmp_path: Path) -> None:
    (tmp_path / "common.py").write_text("DATA = 'fresh'\n")
    (tmp_path / "loadgen.py").write_text("")
    (tmp_path / "alpha.py").write_text('"""A."""\nDATA = "fresh"\n')
    (tmp_path / "beta.py").write_text('"""B, no DATA line: the large data set."""\n')
    found = run_all.discover(tmp_path)
    assert [(b.name, b.data) for b in found] == [("alpha", "fresh"), ("beta", "large")]


def test_pages_run_first_and_the_import_last(tmp_path: Path) -> None:
    for name in ("import_incidents", "alpha", "pages", "zeta"):
        (tmp_path / f"{name}.py").write_text(f'"""{name}."""\n')
    assert [b.name for b in run_all.discover(tmp_path)] == [
        "pages",
        "alpha",
        "zeta",
        "import_incidents",
    ]


def test_the_pages_run_on_every_database_before_the_import_runs_on_any(tmp_path: Path) -> None:
    for name in ("import_incidents", "alpha", "pages"):
        (tmp_path / f"{name}.py").write_text(f'"""{name}."""\n')
    plan = run_all.run_plan(run_all.discover(tmp_path), ["sqlite", "postgresql"])
    assert [(b.name, database) for b, database in plan] == [
        ("pages", "sqlite"),
        ("pages", "postgresql"),
        ("alpha", "sqlite"),
        ("alpha", "postgresql"),
        ("import_incidents", "sqlite"),
        ("import_incidents", "postgresql"),
    ]


def test_the_real_benchmarks_declare_what_they_need() -> None:
    found = {b.name: b.data for b in run_all.discover()}
    assert found["import_incidents"] == "fresh"
    assert found["build_bundle"] == "fresh"
    assert found["dashboard"] == "large"
    assert found["pages"] == "large"
    assert "common" not in found and "run_all" not in found


def fake_benchmark(tmp_path: Path, body: str) -> run_all.Benchmark:
    """A benchmark script taking the runner's three options, doing `body`."""
    script = tmp_path / "fake.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import argparse, sys
            sys.path.insert(0, {str(run_all.ROOT)!r})
            from benchmarks.common import add_common_options, record, write_records
            parser = argparse.ArgumentParser()
            add_common_options(parser)
            args = parser.parse_args()
            """
        )
        + textwrap.dedent(body)
    )
    return run_all.Benchmark("fake", script, "fresh")


def test_run_one_merges_a_benchmarks_records(tmp_path: Path) -> None:
    bench = fake_benchmark(
        tmp_path,
        """
        write_records(args.json, [record("fake", "sqlite", "m", 2.0, "s", bare=1.0,
                                         notes=args.database_url + " " + args.evidence_dir)])
        """,
    )
    got = run_all.run_one(bench, "sqlite", "sqlite:///x.db", tmp_path / "ev", tmp_path, 60)
    assert len(got) == 1 and got[0]["ratio"] == pytest.approx(2.0)
    assert got[0]["notes"] == f"sqlite:///x.db {tmp_path / 'ev'}"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("sys.exit(3)", "exited with status 3"),
        ("pass", "wrote no results"),
        ("open(args.json, 'w').write('[{\"benchmark\": 1}]')", "malformed"),
        (
            "write_records(args.json, [record('fake', 'postgresql', 'm', 1.0, 's')])",
            "when run on sqlite",
        ),
    ],
)
def test_run_one_reports_a_failed_benchmark_as_a_row(
    tmp_path: Path, body: str, problem: str
) -> None:
    bench = fake_benchmark(tmp_path, body)
    got = run_all.run_one(bench, "sqlite", "sqlite:///x.db", tmp_path, tmp_path, 60)
    assert len(got) == 1
    assert got[0]["measure"] == "run failed" and got[0]["met"] is False
    assert problem in got[0]["notes"]


def test_runner_is_importable_without_side_effects() -> None:
    # Importing the runner (as this test does) must not run anything or touch files.
    assert "benchmarks.run_all" in sys.modules
    assert run_all.number(1234567.0) == "1,234,567"
    assert run_all.number(0.01234) == "0.0123"
    assert run_all.number(None) == "–"


def test_extra_options_per_benchmark_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_ARGS_IMPORT_INCIDENTS", raising=False)
    assert run_all.extra_args("import_incidents", "postgresql") == []
    monkeypatch.setitem(run_all.DEFAULT_ARGS, ("import_incidents", "postgresql"), ["--rows", "9"])
    assert run_all.extra_args("import_incidents", "postgresql") == ["--rows", "9"]
    assert run_all.extra_args("import_incidents", "sqlite") == []
    monkeypatch.setenv("BENCH_ARGS_IMPORT_INCIDENTS", "--rows 5000 --seed 3")
    assert run_all.extra_args("import_incidents", "sqlite") == ["--rows", "5000", "--seed", "3"]


def test_merge_joins_runs_made_at_different_times(tmp_path: Path) -> None:
    sqlite_run = run_all.results_document(
        {**MACHINE, "postgresql": "not run"}, sample_records()[:1], ["sqlite: cached"]
    )
    pg_run = run_all.results_document(
        {**MACHINE, "date": "2026-12-04 09:00 UTC", "load_before": "2.00 2.00 2.00"},
        sample_records()[1:2],
        ["postgresql: cached"],
    )
    paths = []
    for n, document in enumerate((sqlite_run, pg_run)):
        paths.append(tmp_path / f"run{n}.json")
        paths[-1].write_text(json.dumps(document))
    out, results = tmp_path / "results.json", tmp_path / "RESULTS.md"
    status = run_all.main(
        ["--merge", *map(str, paths), "--json", str(out), "--results", str(results)]
    )
    assert status == 0
    merged = json.loads(out.read_text())
    assert [r["database"] for r in merged["records"]] == ["sqlite", "postgresql"]
    assert merged["data_sets"] == ["sqlite: cached", "postgresql: cached"]
    assert merged["machine"]["postgresql"] == "15.20"
    assert "2026-12-03 12:00 UTC, 2026-12-04 09:00 UTC" in merged["machine"]["date"]
    table = results.read_text()
    assert "0.10 0.20 0.30; 2.00 2.00 2.00" in table
    assert table.count("| import_incidents |") == 1 and table.count("| pages |") == 1
