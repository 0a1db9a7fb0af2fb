"""The incident import's fast path: its CSV reading, its multi-row statements, and its
two ways of finding rows already held give what the plain way gives (the behaviour
itself is tested in test_incident_import.py)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from licensing.incidents import importer
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
