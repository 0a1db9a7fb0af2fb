"""The incident import's fast path: its CSV reading, its multi-row statements, and its
two ways of finding rows already held give what the plain way gives (the behaviour
itself is tested in test_incident_import.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from licensing.audit.models import AuditEvent
from licensing.errors import ValidationFailed
from licensing.incidents import importer, parallel
from licensing.incidents.importer import POLICE_UK_COLUMNS, import_incidents
from licensing.incidents.models import Incident, IncidentImportRun, PremisesIncidentLink
from tests.conftest import ON_POSTGRES

HEADER = ",".join(POLICE_UK_COLUMNS)
LAT, LON = 53.404, -2.979
NORTH_PER_M = 1 / 111_195


def csv_records(text_: str) -> list[tuple[int, list[str]]]:
    """What csvfiles.read_rows gives: csv.reader over StringIO, numbered by start line."""
    reader = csv.reader(io.StringIO(text_, newline=""))
    records, line_end = [], 0
    for values in reader:
        records.append((line_end + 1, values))
        line_end = reader.line_num
    return records


def outcome(read):  # type: ignore[no-untyped-def]
    try:
        return read()
    except csv.Error as error:
        return ("csv.Error", str(error))


pieces = st.sampled_from([",", '"', '""', "a", " ", "é", "\x00", "\n", "\r\n", "\r"])


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.lists(pieces, max_size=40).map("".join),
        # no lone CR: the split-on-commas path
        st.lists(pieces.filter(lambda p: p != "\r"), max_size=40).map("".join),
    )
)
def test_records_are_read_exactly_as_csv_reader_reads_them(text_):
    expected = outcome(lambda: csv_records(text_))
    assert outcome(lambda: list(importer._records(text_))) == expected


@settings(max_examples=1500, deadline=None)
@given(st.lists(pieces, max_size=40).map("".join), st.integers(min_value=0, max_value=6))
def test_records_split_a_block_at_a_time_are_read_as_csv_reader_reads_them(text_, block):
    """The same, with the text split into lines a few characters at a time."""
    expected = outcome(lambda: csv_records(text_))
    old, importer._BLOCK_CHARS = importer._BLOCK_CHARS, block
    try:
        assert outcome(lambda: list(importer._records(text_))) == expected
    finally:
        importer._BLOCK_CHARS = old


@pytest.mark.parametrize(
    "text_",
    ["abcdefgh,1\r\n", "a,b\nabcdefg\n", 'x\n"abcdefgh"\n', "a,b\n" + "z" * 9],
)
def test_a_field_over_the_csv_limit_fails_as_csv_reader_fails(text_):
    old = csv.field_size_limit(5)
    try:
        expected = outcome(lambda: csv_records(text_))
        assert outcome(lambda: list(importer._records(text_))) == expected
    finally:
        csv.field_size_limit(old)


def police_row(crime_id="", month="2019-03", lat=LAT, location="On or near Bar", crime=None):
    crime = crime or ("Drugs" if crime_id else "Anti-social behaviour")
    return (
        f"{crime_id},{month},Merseyside Police,Merseyside Police,{LON:.6f},{lat:.6f},"
        f"{location},E01006512,Liverpool 060A,{crime},,"
    )


def many_rows(count: int) -> list[str]:
    rows = []
    for i in range(count):
        lat = LAT + (i % 7) * 20 * NORTH_PER_M  # 0…120 m north: some near, some not
        if i % 5 == 0:
            rows.append(police_row(lat=lat, location=f"On or near Place {i % 3}"))  # ASB
        else:
            rows.append(police_row(crime_id=f"c{i:05d}", lat=lat))
        if i % 11 == 0:
            rows.append(rows[-1])  # the same crime twice, or another identical ASB report
        if i % 13 == 0:
            rows.append(police_row(month="2019-13"))
    return rows


def snapshot(session, *run_ids):  # type: ignore[no-untyped-def]
    """The runs' incidents and links, with ids counted from the runs' first incident."""
    incidents = session.execute(
        select(Incident.id, Incident.source_ref, Incident.latitude)
        .where(Incident.import_run_id.in_(run_ids))
        .order_by(Incident.id)
    ).all()
    first = incidents[0].id if incidents else 0
    links = session.execute(
        select(
            PremisesIncidentLink.incident_id,
            PremisesIncidentLink.premises_id,
            PremisesIncidentLink.distance_m,
        )
        .where(PremisesIncidentLink.incident_id.in_([i.id for i in incidents]))
        .order_by(PremisesIncidentLink.id)
    ).all()
    return (
        [(i.id - first, i.source_ref, i.latitude) for i in incidents],
        [(link.incident_id - first, link.premises_id, link.distance_m) for link in links],
    )


@pytest.fixture
def near_premises(world, make_premises, session):  # type: ignore[no-untyped-def]
    premises = make_premises(world["liv"], world["officer"], evidence=False, name="The Albert")
    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    return premises


@pytest.fixture
def small_statements(monkeypatch):  # type: ignore[no-untyped-def]
    """Multi-row statements of a few rows, so a small file spans many statements and
    batches, and link rows wait for the next batch."""
    monkeypatch.setattr(importer, "_SQLITE_MAX_VARIABLES", 40)


def test_many_batches_of_multi_row_statements_give_the_plain_result(
    session, near_premises, small_statements, monkeypatch
):
    """Duplicates checked in memory; then the same file again, checked against the
    table batch by batch: the same counts, ids in file order, links in incident order."""
    rows = many_rows(300)
    data = ("\r\n".join([HEADER, *rows]) + "\r\n").encode()
    first = import_incidents(session, data, "a.csv", "police-uk", None)
    assert first.read == first.created + first.duplicate + first.rejected
    assert first.rejected == 24 and first.duplicate > 0 and first.suggested > 0
    incidents, links = snapshot(session, first.run_id)
    assert [i[0] for i in incidents] == list(range(first.created))  # contiguous, file order
    assert len(links) == first.suggested
    assert [link[0] for link in links] == sorted(link[0] for link in links)
    assert {link[1] for link in links} == {near_premises.id}

    # The same file again, now checked against the table batch by batch: all duplicates.
    monkeypatch.setattr(importer._BulkWriter, "held_refs", lambda self, source, limit: None)
    again = import_incidents(session, data, "a.csv", "police-uk", None)
    assert (again.created, again.duplicate, again.rejected) == (
        0,
        first.created + first.duplicate,
        first.rejected,
    )
    assert snapshot(session, first.run_id, again.run_id) == (incidents, links)


def test_multi_row_statements_and_executemany_store_the_same_rows(
    session, near_premises, monkeypatch
):
    rows = many_rows(120)
    data = ("\n".join([HEADER, *rows])).encode()  # LF, no final line break
    monkeypatch.setattr(importer, "_SQLITE_MAX_VARIABLES", 40)
    chunked = import_incidents(session, data, "a.csv", "police-uk", None)
    stored = snapshot(session, chunked.run_id)
    session.execute(
        text(
            "DELETE FROM premises_incident_links WHERE incident_id IN "
            "(SELECT id FROM incidents WHERE import_run_id = :run)"
        ),
        {"run": chunked.run_id},
    )
    session.execute(
        text("DELETE FROM incidents WHERE import_run_id = :run"), {"run": chunked.run_id}
    )
    session.commit()
    # Statements too big for the file: everything goes through executemany.
    monkeypatch.setattr(importer, "_SQLITE_MAX_VARIABLES", 32_766)
    plain = import_incidents(session, data, "a.csv", "police-uk", None)
    assert chunked.summary() == plain.summary()
    assert chunked.rejections == plain.rejections
    assert snapshot(session, plain.run_id) == stored


def test_a_failed_write_stops_the_import_and_stores_nothing(session, near_premises, monkeypatch):
    def broken(self, incidents, links):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer._BulkWriter, "write_batch", broken)
    runs = session.scalar(select(func.count()).select_from(IncidentImportRun))
    incidents = session.scalar(select(func.count()).select_from(Incident))
    data = ("\r\n".join([HEADER, *many_rows(50)]) + "\r\n").encode()
    with pytest.raises(RuntimeError, match="disk full"):
        import_incidents(session, data, "a.csv", "police-uk", None)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Incident)) == incidents
    assert session.scalar(select(func.count()).select_from(IncidentImportRun)) == runs


@pytest.mark.skipif(ON_POSTGRES, reason="the page cache setting is SQLite's")
def test_the_connection_gets_its_page_cache_size_back(session, near_premises):
    cursor = session.connection().connection.dbapi_connection.cursor()
    (cache_before,) = cursor.execute("PRAGMA cache_size").fetchone()
    data = ("\r\n".join([HEADER, *many_rows(30)]) + "\r\n").encode()
    import_incidents(session, data, "a.csv", "police-uk", None)
    cursor = session.connection().connection.dbapi_connection.cursor()
    assert cursor.execute("PRAGMA cache_size").fetchone() == (cache_before,)


# ---- reading in a second process (licensing.incidents.parallel) -------------------------

SQLITE_ONLY = pytest.mark.skipif(
    ON_POSTGRES, reason="only SQLite imports read in a second process (PostgreSQL probes)"
)


def stored(session, run_id):  # type: ignore[no-untyped-def]
    """Everything a run wrote, ids counted from its first incident, less the times."""
    incidents = [
        dict(row._mapping)
        for row in session.execute(
            text("SELECT * FROM incidents WHERE import_run_id = :run ORDER BY id"), {"run": run_id}
        )
    ]
    first = incidents[0]["id"] if incidents else 0
    links = session.execute(
        text(
            "SELECT incident_id, premises_id, status, method, distance_m, score, decided_by_id"
            " FROM premises_incident_links WHERE incident_id IN"
            " (SELECT id FROM incidents WHERE import_run_id = :run) ORDER BY id"
        ),
        {"run": run_id},
    ).all()
    run = session.get(IncidentImportRun, run_id)
    payload = json.loads(
        session.scalars(
            select(AuditEvent.payload)
            .where(AuditEvent.event == "incidents_imported")
            .order_by(AuditEvent.id.desc())
        ).first()
    )
    assert payload.pop("run_id") == run_id
    for incident in incidents:
        incident["id"] -= first
        del incident["import_run_id"], incident["created_at"]
    return {
        "incidents": incidents,
        "links": [(i - first, *rest) for i, *rest in links],
        "run": (run.rows_read, run.created, run.duplicate, run.rejected, run.linked),
        "rejections": [(r.line_number, r.reason, r.raw) for r in run.rejections],
        "payload": payload,
    }


def forget(session, run_id):  # type: ignore[no-untyped-def]
    """Delete a run's incidents and links, so the same file imports afresh."""
    session.execute(
        text(
            "DELETE FROM premises_incident_links WHERE incident_id IN "
            "(SELECT id FROM incidents WHERE import_run_id = :run)"
        ),
        {"run": run_id},
    )
    session.execute(text("DELETE FROM incidents WHERE import_run_id = :run"), {"run": run_id})
    session.commit()


def generic_file(licence_number: str, authority: str, rows: int) -> bytes:
    lines = ["source_ref,occurred_at,month,category,description,latitude,longitude,"
             "licence_number,authority"]  # fmt: skip
    for i in range(rows):
        licence = licence_number if i % 4 == 0 else ""
        when = f"2026-11-{1 + i % 28:02d}T22:{i % 60:02d}:00Z" if i % 3 else ""
        month = "" if when else "2026-10"
        lat = LAT + (i % 6) * 20 * NORTH_PER_M
        category = "Drugs" if i % 17 else "Not a category"
        lines.append(
            f'R{i % 250},{when},{month},{category},"Fight, outside",{lat:.6f},{LON},'
            f"{licence},{authority}"
        )
    return ("\n".join(lines) + "\n").encode()


def files(near_premises):  # type: ignore[no-untyped-def]
    """A data.police.uk file and a generic one, each with rejections, duplicates and links."""
    police = ("\r\n".join([HEADER, *many_rows(600)]) + "\r\n").encode()
    authority = near_premises.authority.code
    return [
        ("police-uk", police),
        ("generic", generic_file(near_premises.licence_number, authority, 400)),
    ]


@SQLITE_ONLY
def test_reading_in_a_second_process_stores_exactly_what_one_process_stores(
    session, near_premises, small_statements
):
    """Many batches through the pipe, for both layouts: the same incidents (every column,
    the same ids), links, rejections, run counts and audit payload as one process, and
    re-importing adds nothing either way."""
    for fmt, data in files(near_premises):
        one = import_incidents(session, data, "a.csv", fmt, None, second_process=False)
        expected = stored(session, one.run_id)
        assert one.rejected and one.duplicate and one.suggested
        assert len(expected["incidents"]) == one.created
        forget(session, one.run_id)

        two = import_incidents(session, data, "a.csv", fmt, None, second_process=True)
        assert two.summary() == one.summary()
        assert two.rejections == one.rejections
        assert stored(session, two.run_id) == expected
        assert two.run_id is not None and two.run_id != one.run_id

        again = import_incidents(session, data, "a.csv", fmt, None, second_process=True)
        assert (again.created, again.duplicate, again.rejected) == (
            0,
            one.created + one.duplicate,
            one.rejected,
        )


def counts(session):  # type: ignore[no-untyped-def]
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Incident, PremisesIncidentLink, IncidentImportRun, AuditEvent)
    )


def fail_in_the_child_at(monkeypatch, row: int, fail) -> None:  # type: ignore[no-untyped-def]
    """Make the reading of the `row`-th data.police.uk row call `fail` (in the child)."""
    parse = importer._PoliceUkParser.parse
    seen = [0]

    def failing(self, values, incident_id=0):  # type: ignore[no-untyped-def]
        seen[0] += 1
        if seen[0] == row:
            fail()
        return parse(self, values, incident_id)

    monkeypatch.setattr(importer._PoliceUkParser, "parse", failing)


def assert_no_child_left() -> None:
    """The reading process was waited for: this process has no child left, not even a
    zombie."""
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def check_rerun_completes(session, data, before):  # type: ignore[no-untyped-def]
    """Nothing of the failed import is left; a re-run imports it all; a third adds nothing."""
    assert counts(session) == before, "a failed import left rows behind"
    done = import_incidents(session, data, "a.csv", "police-uk", None, second_process=True)
    assert done.created > 0 and done.read == done.created + done.duplicate + done.rejected
    assert counts(session)[0] == before[0] + done.created
    again = import_incidents(session, data, "a.csv", "police-uk", None, second_process=True)
    assert again.created == 0 and again.duplicate == done.created + done.duplicate


@SQLITE_ONLY
def test_an_error_in_the_second_process_rolls_the_whole_import_back(
    session, near_premises, small_statements, monkeypatch
):
    """The child fails after the parent has written many of its batches: the error is
    raised here, with the child's traceback, and nothing of the import is kept, even if
    the caller commits."""
    data = ("\r\n".join([HEADER, *many_rows(600)]) + "\r\n").encode()
    before = counts(session)
    parent = os.getpid()

    def fail():  # type: ignore[no-untyped-def]
        raise RuntimeError(f"cannot read (process {os.getpid()})")

    fail_in_the_child_at(monkeypatch, 500, fail)
    with pytest.raises(RuntimeError, match=r"cannot read \(process (\d+)\)") as raised:
        import_incidents(session, data, "a.csv", "police-uk", None, second_process=True)
    assert f"process {parent})" not in str(raised.value)  # it was raised in the child
    assert any("second process" in note for note in raised.value.__notes__)
    session.commit()
    assert_no_child_left()
    monkeypatch.undo()
    check_rerun_completes(session, data, before)


@SQLITE_ONLY
def test_the_second_process_dying_rolls_the_whole_import_back(
    session, near_premises, small_statements, monkeypatch
):
    """The child ends abruptly (as if killed, or out of memory) half-way through."""
    data = ("\r\n".join([HEADER, *many_rows(600)]) + "\r\n").encode()
    before = counts(session)
    fail_in_the_child_at(monkeypatch, 500, lambda: os._exit(9))
    with pytest.raises(parallel.ChildFailed, match="ended without finishing"):
        import_incidents(session, data, "a.csv", "police-uk", None, second_process=True)
    session.commit()
    assert_no_child_left()
    monkeypatch.undo()
    check_rerun_completes(session, data, before)


@SQLITE_ONLY
def test_a_database_error_while_the_child_reads_stops_it_and_keeps_nothing(
    session, near_premises, small_statements
):
    """The database refuses a row (a trigger, as a full disk or a constraint would) while
    the child is still reading: the child is stopped and the import rolled back."""
    data = ("\r\n".join([HEADER, *many_rows(600)]) + "\r\n").encode()
    session.execute(
        text(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON incidents WHEN NEW.source_ref = 'c00301'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
        )
    )
    session.commit()
    before = counts(session)
    with pytest.raises(sqlite3.IntegrityError, match="refused by the database"):
        import_incidents(session, data, "a.csv", "police-uk", None, second_process=True)
    session.commit()
    assert_no_child_left()
    session.execute(text("DROP TRIGGER refuse_one"))
    session.commit()
    check_rerun_completes(session, data, before)


@SQLITE_ONLY
def test_a_file_unreadable_deep_inside_is_refused_from_the_second_process(session, near_premises):
    """csv's error for an over-long field, raised in the child, is the same refusal."""
    rows = many_rows(300)
    rows[250] = f'c99999,2019-03,"{"x" * (csv.field_size_limit() + 1)}",,,,,,,,,'
    data = ("\r\n".join([HEADER, *rows]) + "\r\n").encode()
    before = counts(session)
    with pytest.raises(ValidationFailed, match="longer than"):
        import_incidents(session, data, "a.csv", "police-uk", None, second_process=True)
    assert counts(session) == before
    assert_no_child_left()


def test_a_small_file_is_always_read_in_the_importers_own_process():
    assert not parallel.worthwhile(parallel.MIN_LINES - 1)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="measures idle cores on Linux")
def test_a_large_file_is_read_here_when_no_core_is_free():
    """Every core this process may use kept busy by other processes: no second process."""
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(parallel.cores())
    ]
    try:
        time.sleep(0.3)  # let them start spinning
        assert parallel.free_cores() < 1.0
        assert not parallel.worthwhile(parallel.MIN_LINES)
    finally:
        for process in busy:
            process.kill()
            process.wait()


def test_batches_arrive_in_order_and_the_result_comes_back():
    got = []
    result = parallel.run_in_child(
        lambda send: [send([n, f"batch {n}", n / 2, None]) for n in range(50)] and "done",
        got.append,
    )
    assert result == "done"
    assert got == [[n, f"batch {n}", n / 2, None] for n in range(50)]
    assert_no_child_left()


def test_a_failure_here_kills_the_child_at_once():
    """The child would send for ever; the parent's consumer fails at the third batch."""

    def forever(send):  # type: ignore[no-untyped-def]
        while True:
            send(["x" * 10_000])

    def consume(batch):  # type: ignore[no-untyped-def]
        consume.calls += 1  # type: ignore[attr-defined]
        if consume.calls == 3:  # type: ignore[attr-defined]
            raise OSError("cannot write")

    consume.calls = 0  # type: ignore[attr-defined]
    with pytest.raises(OSError, match="cannot write"):
        parallel.run_in_child(forever, consume)
    assert_no_child_left()


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's planner statistics")
def test_a_long_postgresql_import_refreshes_the_statistics_its_probes_are_planned_by(
    session, near_premises, monkeypatch
):
    """Autovacuum cannot count rows the import has not committed; the importer refreshes
    the statistics itself as the rows it probes double, so the planner knows how big the
    table has grown (stale, it read every row of the source on each probe)."""
    monkeypatch.setattr(importer, "BATCH", 100)
    monkeypatch.setattr(importer, "_ANALYSE_FIRST", 200)
    session.execute(text("ANALYZE incidents"))  # the empty table, as a fresh database has it
    session.commit()
    data = ("\r\n".join([HEADER, *many_rows(1000)]) + "\r\n").encode()
    result = import_incidents(session, data, "a.csv", "police-uk", None)
    assert result.created > 800
    analysed = session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'incidents'"))
    # The last refresh came when 800 rows had been probed (200, 400, 800), so the
    # statistics count at least the 700 or so stored before it.
    assert analysed >= 500
