"""Importing data.police.uk street-level CSVs and the generic layout: nothing is lost,
nothing is imported twice, and incidents near premises become suggestions."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from licensing.audit.models import AuditEvent
from licensing.incidents.importer import POLICE_UK_COLUMNS, import_incidents, rejections_csv
from licensing.incidents.models import Incident, IncidentImportRun, PremisesIncidentLink
from licensing.incidents.services import decide_links

HEADER = ",".join(POLICE_UK_COLUMNS)
LAT, LON = 53.404, -2.979  # a premises sits here in several tests
NORTH_PER_M = 1 / 111_195


@pytest.fixture
def premises(world, make_premises):
    """A premises with nothing linked to it yet."""
    return make_premises(
        world["liv"],
        world["officer"],
        evidence=False,
        name="The Albert",
        licence_number="LIV/ALBERT",
    )


def police_row(
    crime_id="",
    month="2019-03",
    lon=LON,
    lat=LAT,
    location="On or near Nightclub",
    crime="Anti-social behaviour",
    outcome="",
):
    lon_text = "" if lon is None else f"{lon:.6f}"
    lat_text = "" if lat is None else f"{lat:.6f}"
    return f"{crime_id},{month},Merseyside Police,Merseyside Police,{lon_text},{lat_text},{location},E01006512,Liverpool 060A,{crime},{outcome},"


def police_file(rows, newline="\r\n", bom=False) -> bytes:
    text = newline.join([HEADER, *rows]) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_identical_asb_rows_are_separate_reports_and_reimport_adds_nothing(session):
    rows = [police_row()] * 3 + [
        police_row(
            crime_id="a" * 64, crime="Violence and sexual offences", outcome="Under investigation"
        )
    ]
    data = police_file(rows)
    first = import_incidents(session, data, "march.csv", "police-uk", None)
    assert (first.read, first.created, first.duplicate, first.rejected) == (4, 4, 0, 0)
    second = import_incidents(session, data, "march.csv", "police-uk", None)
    assert (second.read, second.created, second.duplicate, second.rejected) == (4, 0, 4, 0)
    assert count(session, Incident) == 4
    refs = session.scalars(
        select(Incident.source_ref).where(Incident.category == "Anti-social behaviour")
    ).all()
    assert len(set(refs)) == 3


def test_overlapping_reissue_of_a_month_adds_only_the_new_rows(session):
    original = [police_row(), police_row(), police_row(crime_id="b" * 64, crime="Drugs")]
    import_incidents(session, police_file(original), "v1.csv", "police-uk", None)
    reissue = [*original, police_row(), police_row(location="On or near Park")]
    result = import_incidents(
        session, police_file(reissue, newline="\n", bom=True), "v2.csv", "police-uk", None
    )
    assert (result.created, result.duplicate) == (2, 3)
    assert count(session, Incident) == 5


def test_rows_without_coordinates_are_kept_unlinked(session, world, premises):
    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    result = import_incidents(
        session, police_file([police_row(lat=None, lon=None)]), "f.csv", "police-uk", None
    )
    assert result.created == 1 and result.suggested == 0
    incident = session.scalar(select(Incident))
    assert incident.latitude is None and incident.longitude is None
    assert (
        session.scalars(
            select(PremisesIncidentLink).where(PremisesIncidentLink.premises_id == premises.id)
        ).all()
        == []
    )


def test_a_month_in_year_0000_is_a_rejected_row_not_a_failed_import(session):
    rows = [police_row(), police_row(month="0000-01")]
    result = import_incidents(session, police_file(rows), "year0.csv", "police-uk", None)
    assert (result.read, result.created, result.rejected) == (2, 1, 1)
    assert "0000-01" in dict(result.rejections)[3]


def test_bad_rows_are_rejected_with_line_and_reason_and_downloadable(session):
    rows = [
        police_row(),
        police_row(month="2019-13"),
        police_row(crime="Jaywalking"),
        police_row(lat=None),  # latitude missing, longitude given
        "only,three,fields",
        police_row(lon=500.0),
    ]
    result = import_incidents(session, police_file(rows), "bad.csv", "police-uk", None)
    assert (result.read, result.created, result.rejected) == (6, 1, 5)
    lines = [line for line, _ in result.rejections]
    assert lines == [3, 4, 5, 6, 7]
    reasons = dict(result.rejections)
    assert "2019-13" in reasons[3]
    assert "Jaywalking" in reasons[4]
    assert "both" in reasons[5]
    assert "fields" in reasons[6]
    assert "out of range" in reasons[7]
    run = session.get(IncidentImportRun, result.run_id)
    download = list(csv.reader(io.StringIO(rejections_csv(run))))
    assert download[0] == ["line_number", "reason", "row"]
    assert [int(r[0]) for r in download[1:]] == lines
    assert download[4][2] == '"only,three,fields"' or download[4][2] == "only,three,fields"


def test_suggestions_by_distance_and_rejected_ones_do_not_come_back(session, world, premises):
    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    near = police_row(lat=LAT + 30 * NORTH_PER_M, location="On or near Bar")
    far = police_row(lat=LAT + 80 * NORTH_PER_M, location="On or near Shop")
    result = import_incidents(session, police_file([near, far]), "f.csv", "police-uk", None)
    assert (result.created, result.suggested) == (2, 1)
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.premises_id == premises.id)
    )
    assert (
        link.premises_id == premises.id
        and link.status == "suggested"
        and link.method == "proximity"
    )
    assert math.isclose(link.distance_m, 30, abs_tol=0.5)
    decide_links(session, world["officer"], [link.id], "rejected")
    again = import_incidents(session, police_file([near, far]), "f.csv", "police-uk", None)
    assert again.suggested == 0
    assert (
        session.scalar(
            select(PremisesIncidentLink.status).where(
                PremisesIncidentLink.premises_id == premises.id
            )
        )
        == "rejected"
    )


def test_one_summary_event_per_run_not_one_per_link(session, world, premises):
    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    before = count(session, AuditEvent)
    result = import_incidents(session, police_file([police_row()] * 5), "f.csv", "police-uk", None)
    assert result.suggested == 5
    events = session.scalars(select(AuditEvent).where(AuditEvent.id > before)).all()
    assert [e.event for e in events] == ["incidents_imported"]
    payload = json.loads(events[0].payload)
    assert payload["suggested"] == 5 and payload["run_id"] == result.run_id


def test_generic_layout_links_by_licence_number_confirmed(session, world, premises):
    text = (
        "source_ref,occurred_at,category,description,location,latitude,longitude,licence_number,authority,uprn\n"
        f"RMS-1,2026-11-20T23:15:00Z,Public order,Fight at closing,Outside,,,{premises.licence_number},LIV,\n"
        "RMS-2,2026-11-21T01:00:00,Drugs,Found,,,,,,\n"
        "RMS-3,not-a-date,Drugs,,,,,,,\n"
    )
    result = import_incidents(session, text.encode(), "rms.csv", "generic", None)
    assert (result.read, result.created, result.rejected, result.linked) == (3, 2, 1, 1)
    link = session.scalar(
        select(PremisesIncidentLink).where(PremisesIncidentLink.premises_id == premises.id)
    )
    assert (link.premises_id, link.status, link.method) == (
        premises.id,
        "confirmed",
        "licence_number",
    )
    london = session.scalar(select(Incident).where(Incident.source_ref == "RMS-2"))
    assert london.occurred_at.isoformat() == "2026-11-21T01:00:00+00:00"  # GMT in November


def test_a_file_with_the_wrong_header_is_refused_and_writes_nothing(session):
    from licensing.errors import ValidationFailed

    before = count(session, IncidentImportRun)
    try:
        import_incidents(session, b"a,b,c\n1,2,3\n", "x.csv", "police-uk", None)
    except ValidationFailed as error:
        assert "data.police.uk" in error.message
    else:
        raise AssertionError("expected the header to be refused")
    session.rollback()
    assert count(session, IncidentImportRun) == before


cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.one_of(
            st.builds(lambda: police_row()),
            st.builds(
                lambda m: police_row(month=m),
                st.sampled_from(["2019-03", "2019-3", "", "2019-00", "abcd-ef"]),
            ),
            st.builds(
                lambda c: police_row(crime=c),
                st.sampled_from(["Drugs", "Burglary", "drugs", "", "Other"]),
            ),
            st.builds(
                lambda i: police_row(crime_id=i, crime="Robbery"),
                st.sampled_from(["x1", "x2", "x3"]),
            ),
            st.lists(cell, min_size=0, max_size=15).map(
                lambda cells: ",".join(
                    c.replace("\n", " ").replace("\r", " ").replace('"', "") for c in cells
                )
            ),
        ),
        max_size=25,
    )
)
@pytest.mark.parametrize("second_process", [False, True], ids=["one process", "two"])
def test_no_row_is_ever_lost(session, rows, second_process):
    """Whatever the rows: read = created + duplicate + rejected, and the database agrees,
    whether the file is read in this process or a second one (SQLite)."""
    incidents_before = count(session, Incident)
    result = import_incidents(
        session, police_file(rows), "fuzz.csv", "police-uk", None, second_process=second_process
    )
    assert result.read == result.created + result.duplicate + result.rejected
    assert count(session, Incident) - incidents_before == result.created
    run = session.get(IncidentImportRun, result.run_id)
    assert len(run.rejections) == result.rejected


def test_blank_lines_are_not_rows(session):
    data = police_file(
        [police_row(), "", ",,,,,,,,,,,", police_row(crime_id="c" * 64, crime="Drugs")]
    )
    result = import_incidents(session, data, "blank.csv", "police-uk", None)
    assert (result.read, result.created, result.rejected) == (2, 2, 0)


def test_a_nul_character_rejects_the_row_and_keeps_it_readable(session):
    data = police_file([police_row(location="On or near\x00Bar"), police_row()])
    result = import_incidents(session, data, "nul.csv", "police-uk", None)
    assert (result.read, result.created, result.rejected) == (2, 1, 1)
    assert "NUL" in result.rejections[0][1]
    run = session.get(IncidentImportRun, result.run_id)
    assert "\\x00" in run.rejections[0].raw and "\x00" not in run.rejections[0].raw


def test_every_link_carries_its_incidents_counted_at(session, world, premises):
    """Each way a link is made copies its incident's counted_at onto it (migration 0016:
    the premises page orders and bounds a premises' links by that copy): the police-uk
    and generic imports, a recorded incident confirmed or suggested, and a link written
    without it (the column's default looks it up)."""
    from licensing.incidents.services import record_incident

    premises.latitude, premises.longitude = LAT, LON
    session.commit()
    police = import_incidents(
        session,
        police_file([police_row(month="2026-08"), police_row(month="2026-08", crime="Drugs")]),
        "august.csv",
        "police-uk",
        None,
    )
    generic = (
        "source_ref,occurred_at,category,description,location,latitude,longitude,licence_number,authority,uprn\n"
        f"RMS-9,2026-11-20T23:15:00Z,Public order,Fight,Outside,,,{premises.licence_number},LIV,\n"
    )
    rms = import_incidents(session, generic.encode(), "rms.csv", "generic", None)
    assert (police.suggested, rms.linked) == (2, 1)
    officer = world["officer"]
    record_incident(
        session,
        officer,
        {"source": "rms", "source_ref": "RMS-10", "occurred_at": "2026-11-01T22:00:00Z",
         "category": "Drugs"},
        premises=premises,
    )  # fmt: skip
    record_incident(
        session,
        officer,
        {"source": "rms", "source_ref": "RMS-11", "month": "2026-10", "category": "Drugs",
         "latitude": LAT, "longitude": LON},
    )  # fmt: skip
    lone = Incident(
        source="rms", source_ref="RMS-12", counted_at=police_month_middle(), category="Drugs"
    )
    session.add(lone)
    session.flush()
    session.add(
        PremisesIncidentLink(
            premises_id=premises.id, incident_id=lone.id, status="rejected", method="officer"
        )
    )
    session.commit()

    pairs = session.execute(
        select(PremisesIncidentLink.incident_counted_at, Incident.counted_at).join(
            Incident, Incident.id == PremisesIncidentLink.incident_id
        )
    ).all()
    assert len(pairs) >= 6  # the world's own links are checked too
    assert all(copy == counted for copy, counted in pairs), pairs
    assert len({counted for _, counted in pairs}) >= 5  # the copies differ where they should


def police_month_middle():
    from datetime import UTC, datetime

    return datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
