"""Importing a council premises licence register (LGA "PremisesLicences" CSV).

The files are built here (or read from tests/fixtures/) to reproduce the quirks of the
real Manchester register: cp1252 bytes, CRLF, blank trailing rows of fewer fields, stray
spaces, NA, quoted commas and newlines. Private individuals' names are invented.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.audit.models import SYSTEM_CHAIN, AuditEvent, AuditPersonalValue
from licensing.audit.services import verify_chains
from licensing.errors import Forbidden, ValidationFailed
from licensing.premises.models import (
    LicensingAuthority,
    Premises,
    RegisterImportRejection,
    RegisterImportRun,
)
from licensing.premises.register_import import (
    RegisterImportResult,
    import_register,
    rejections_csv,
)

FIXTURES = Path(__file__).parent / "fixtures"

HEADER = [
    "EXTRACTDATE",
    "ORGANISATIONURI",
    "ORGANISATIONLABEL",
    "CASEREFERENCE",
    "CASEDATE",
    "SERVICETYPEURI",
    "SERVICETYPELABEL",
    "PREMISESNAME",
    "LOCATIONTEXT",
    "POSTCODE",
    "ENTERTAINMENTTYPEURI",
    "ENTERTAINMENTTYPELABEL",
    "LATENIGHTREFRESHMENT",
    "ALCOHOLSUPPLY",
    "OPENINGHOURS",
    "STATUSURI",
    "STATUSLABEL",
    "LICENCESTARTDATE",
    "LICENCEENDDATE",
    "ONPREMISESALCOHOLSALE",
    "OFFPREMISESALCOHOLSALE",
    "LICENCEHOLDER",
    "LICENCEHOLDERADDRESS",
    "LICENCEHOLDERPOSTCODE",
    "APPLICANTTYPEURI",
    "APPLICANTTYPELABEL",
    "DESIGNATEDPREMISESSUPERVISOR",
    "SUPERVISORLICENCENO",
    "SUPERVISORADDRESS",
    "SUPERVISORPOSTCODE",
    "CONDITIONS",
    "DECISIONDATE",
    "DECIDEDBY",
    "LICENCEURL",
    "UPRN",
    "GEOPOINTLICENSINGURL",
]
assert len(HEADER) == 36

# Invented people: none of these may reach the audit chain.
PEOPLE = ("Ada Example", "Ben Sample", "Carys Invented", "Dafydd Madeup", "Erin Fictional")


def rec(case: str, name: str, **fields: str) -> list[str]:
    """One register row of 36 fields; keyword names are column names (any case)."""
    values = dict.fromkeys(HEADER, "")
    values.update(
        EXTRACTDATE="10/10/2014",
        ORGANISATIONLABEL="Manchester",
        STATUSLABEL="Current",
        CASEREFERENCE=case,
        PREMISESNAME=name,
    )
    values.update({k.upper(): v for k, v in fields.items()})
    assert set(values) == set(HEADER), "unknown column"
    return [values[h] for h in HEADER]


def register(rows: list[list[str] | str], newline: str = "\r\n", header: list[str] = HEADER) -> str:
    """CSV text: lists are written as CSV records, strings as raw lines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        if isinstance(row, str):
            out.write(row + newline)
        else:
            writer.writerow(row)
    return out.getvalue()


# Line numbers in comments: the header is line 1; the quoted newline spans lines 4-5.
MESSY_ROWS: list[list[str] | str] = [
    rec(  # line 2
        "1565",
        "Fresh & Frozen",
        LOCATIONTEXT="21 Assheton Road, Manchester    ",
        POSTCODE=" m40  1ub ",
        ENTERTAINMENTTYPELABEL="Recorded Music",
        LATENIGHTREFRESHMENT="TRUE",
        ALCOHOLSUPPLY="TRUE",
        LICENCEHOLDER="Mrs Ada Example",
        DESIGNATEDPREMISESSUPERVISOR="Mr Ben Sample",
    ),
    rec(  # line 3
        " 2041 ",
        "  Hickson & Black’s Café ",
        POSTCODE="M1 1JQ",
        OPENINGHOURS="NA",
        UPRN="NA",
        LICENCEHOLDER="Carys Invented",
        DESIGNATEDPREMISESSUPERVISOR="Dafydd Madeup",
    ),
    rec("2290", "Sackville Lounge", LOCATIONTEXT="3 Sackville Street,\nManchester"),  # lines 4-5
    rec("", "No Number Bar"),  # line 6: rejected
    rec("1565", "Fresh & Frozen Again"),  # line 7: rejected, duplicate
    rec("3001", "Bad Uprn Inn", UPRN="12AB"),  # line 8: rejected
    rec("3002", "Good Uprn Inn", UPRN=" 100023456789 "),  # line 9
    "=cmd|' /C calc'!A0,Short Row",  # line 10: rejected, short with content
    "-2.24",  # line 11: rejected, short with content
    "," * 35,  # line 12: blank, full length
    "",  # line 13: empty line
    "," * 22 + "    ",  # line 14: blank, 23 fields, as Manchester's trailing rows
    "," * 22 + "   ",  # line 15
    "," * 10,  # line 16: blank, another length
]
MESSY_REJECTIONS = [
    (6, "CASEREFERENCE (licence number) is empty"),
    (7, "licence number 1565 appears again (first on line 2)"),
    (8, "UPRN: A UPRN is a number of up to 12 digits"),
    (10, "the row has 2 fields; the header has 36"),
    (11, "the row has 1 fields; the header has 36"),
]
ENCODINGS = [
    pytest.param("cp1252", "\r\n", id="cp1252-crlf"),
    pytest.param("cp1252", "\n", id="cp1252-lf"),
    pytest.param("utf-8", "\n", id="utf8-lf"),
    pytest.param("utf-8", "\r\n", id="utf8-crlf"),
    pytest.param("utf-8-sig", "\r\n", id="utf8-bom-crlf"),
]


def messy(encoding: str = "cp1252", newline: str = "\r\n") -> bytes:
    data = register(MESSY_ROWS, newline).encode(encoding)
    if encoding == "cp1252":
        assert b"Black\x92s Caf\xe9" in data  # really cp1252 bytes, not valid UTF-8
    return data


def counts(result: RegisterImportResult) -> dict[str, int]:
    return {
        k: getattr(result, k)
        for k in ("read", "created", "updated", "unchanged", "skipped", "rejected")
    }


def chain_events(session: Session) -> int:
    """Events on premises chains (the register_imported event goes on the system chain)."""
    return session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.chain.like("premises:%"))
    )


def total(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model))


def by_licence(session: Session, authority: LicensingAuthority) -> dict[str, Premises]:
    return {
        p.licence_number: p
        for p in session.scalars(select(Premises).where(Premises.authority_id == authority.id))
    }


@pytest.fixture
def man(make_authority) -> LicensingAuthority:  # type: ignore[no-untyped-def]
    return make_authority("MAN", "Manchester City Council")


# ---- a messy file, in every encoding and line ending -----------------------------------


@pytest.mark.parametrize(("encoding", "newline"), ENCODINGS)
def test_messy_register_counts_and_values(session, man, encoding, newline) -> None:
    result = import_register(session, messy(encoding, newline), "register.csv", man, None)

    assert counts(result) == {
        "read": 14,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "skipped": 5,
        "rejected": 5,
    }
    assert result.read == (
        result.created + result.updated + result.unchanged + result.skipped + result.rejected
    )
    assert result.rejections == MESSY_REJECTIONS

    premises = by_licence(session, man)
    assert set(premises) == {"1565", "2041", "2290", "3002"}
    fresh = premises["1565"]
    assert fresh.name == "Fresh & Frozen"
    assert fresh.address == "21 Assheton Road, Manchester"
    assert fresh.postcode == "M40 1UB"
    assert fresh.licence_holder == "Mrs Ada Example"
    assert fresh.dps == "Mr Ben Sample"
    assert fresh.licensable_activities == (
        "Recorded Music; Supply of alcohol; Late night refreshment"
    )
    assert fresh.licence_status == "current"
    assert fresh.state == "monitored"
    assert fresh.case_officer_id is None
    cafe = premises["2041"]
    assert cafe.name == "Hickson & Black’s Café"
    assert cafe.opening_hours == ""
    assert cafe.uprn is None
    assert premises["2290"].address == "3 Sackville Street, Manchester"
    assert premises["3002"].uprn == "100023456789"


def test_run_and_rejections_are_stored(session, man) -> None:
    result = import_register(session, messy(), "manchester.csv", man, None)

    run = session.get(RegisterImportRun, result.run_id)
    assert run is not None
    assert (run.file_name, run.authority_id, run.imported_by_id) == ("manchester.csv", man.id, None)
    assert (run.rows_read, run.created, run.updated, run.unchanged, run.skipped, run.rejected) == (
        14,
        4,
        0,
        0,
        5,
        5,
    )
    stored = session.scalars(
        select(RegisterImportRejection)
        .where(RegisterImportRejection.run_id == run.id)
        .order_by(RegisterImportRejection.line_number)
    ).all()
    assert [(r.line_number, r.reason) for r in stored] == MESSY_REJECTIONS
    raw = {r.line_number: r.raw for r in stored}
    assert raw[10] == "=cmd|' /C calc'!A0,Short Row"
    assert raw[11] == "-2.24"
    assert next(csv.reader([raw[8]])) == rec("3001", "Bad Uprn Inn", UPRN="12AB")
    system = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == SYSTEM_CHAIN).order_by(AuditEvent.seq)
    ).all()
    assert system[-1].event == "register_imported"
    assert json.loads(system[-1].payload)["run_id"] == run.id


def test_rejections_csv_is_formula_safe(session, man) -> None:
    result = import_register(session, messy(), "register.csv", man, None)
    run = session.get(RegisterImportRun, result.run_id)

    text = rejections_csv(run)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["line_number", "reason", "row"]
    assert [(int(r[0]), r[1]) for r in rows[1:]] == MESSY_REJECTIONS
    by_line = {int(r[0]): r[2] for r in rows[1:]}
    assert by_line[10] == "'=cmd|' /C calc'!A0,Short Row"  # neutralised
    assert by_line[11] == "-2.24"  # a plain number is left alone
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or cell == "-2.24", cell


def test_rejected_row_with_a_newline_is_kept_whole(session, man) -> None:
    data = register([rec("", "Two\nLines Bar"), rec("77", "After")]).encode()
    result = import_register(session, data, "r.csv", man, None)

    assert result.rejections == [(2, "CASEREFERENCE (licence number) is empty")]
    assert counts(result)["created"] == 1
    run = session.get(RegisterImportRun, result.run_id)
    rows = list(csv.reader(io.StringIO(rejections_csv(run), newline="")))
    assert next(csv.reader(io.StringIO(rows[1][2], newline=""))) == rec("", "Two\nLines Bar")


# ---- importing again ----------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "newline"), ENCODINGS[:1] + ENCODINGS[-1:])
def test_second_import_changes_nothing(session, man, encoding, newline) -> None:
    data = messy(encoding, newline)
    import_register(session, data, "register.csv", man, None)
    events = chain_events(session)
    versions = {k: p.version for k, p in by_licence(session, man).items()}

    again = import_register(session, data, "register.csv", man, None)

    assert counts(again) == {
        "read": 14,
        "created": 0,
        "updated": 0,
        "unchanged": 4,
        "skipped": 5,
        "rejected": 5,
    }
    assert chain_events(session) == events
    assert {k: p.version for k, p in by_licence(session, man).items()} == versions
    assert total(session, RegisterImportRun) == 2


def test_same_rows_in_another_encoding_are_unchanged(session, man) -> None:
    import_register(session, messy("cp1252", "\r\n"), "a.csv", man, None)
    events = chain_events(session)

    again = import_register(session, messy("utf-8-sig", "\n"), "b.csv", man, None)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert chain_events(session) == events


def _changed(**fields: str) -> bytes:
    rows = list(MESSY_ROWS)
    rows[0] = rec(
        "1565",
        "Fresh & Frozen",
        **{
            "LOCATIONTEXT": "21 Assheton Road, Manchester    ",
            "POSTCODE": " m40  1ub ",
            "ENTERTAINMENTTYPELABEL": "Recorded Music",
            "LATENIGHTREFRESHMENT": "TRUE",
            "ALCOHOLSUPPLY": "TRUE",
            "LICENCEHOLDER": "Mrs Ada Example",
            "DESIGNATEDPREMISESSUPERVISOR": "Mr Ben Sample",
            **fields,
        },
    )
    return register(rows).encode("cp1252")


def test_unchanged_helper_reproduces_the_original_row(session, man) -> None:
    import_register(session, messy(), "register.csv", man, None)
    again = import_register(session, _changed(), "register.csv", man, None)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


def _new_events(session: Session, after: int) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain.like("premises:%"), AuditEvent.id > after)
            .order_by(AuditEvent.id)
        ).all()
    )


def _last_event_id(session: Session) -> int:
    return session.scalar(select(func.max(AuditEvent.id))) or 0


def test_changed_supervisor_is_one_dps_changed_event(session, man) -> None:
    import_register(session, messy(), "register.csv", man, None)
    last = _last_event_id(session)

    result = import_register(
        session,
        _changed(DESIGNATEDPREMISESSUPERVISOR="Ms Erin Fictional"),
        "register.csv",
        man,
        None,
    )

    assert (result.created, result.updated, result.unchanged) == (0, 1, 3)
    events = _new_events(session, last)
    assert [e.event for e in events] == ["dps_changed"]
    fresh = by_licence(session, man)["1565"]
    assert events[0].premises_id == fresh.id
    assert json.loads(events[0].payload)["changes"] == {"dps": {"personal": True}}
    assert "Erin" not in events[0].payload and "Ben Sample" not in (events[0].reason or "")
    personal = session.scalars(
        select(AuditPersonalValue).where(AuditPersonalValue.event_id == events[0].id)
    ).all()
    assert [(p.field, p.old_value, p.new_value) for p in personal] == [
        ("dps", "Mr Ben Sample", "Ms Erin Fictional")
    ]
    assert fresh.dps == "Ms Erin Fictional"
    assert fresh.version == 2


def test_changed_name_and_postcode_is_one_details_changed_event(session, man) -> None:
    import_register(session, messy(), "register.csv", man, None)
    last = _last_event_id(session)

    result = import_register(
        session, _changed(POSTCODE="M40 1UC", PREMISESNAME="Fresh and Frozen"), "r.csv", man, None
    )

    assert result.updated == 1
    events = _new_events(session, last)
    assert [e.event for e in events] == ["details_changed"]
    assert json.loads(events[0].payload)["changes"] == {
        "name": {"old": "Fresh & Frozen", "new": "Fresh and Frozen"},
        "postcode": {"old": "M40 1UB", "new": "M40 1UC"},
    }
    assert events[0].reason == "Register import of r.csv"
    assert verify_chains(session).ok


def test_narrower_register_leaves_missing_columns_alone(session, man) -> None:
    import_register(session, messy(), "register.csv", man, None)
    events = chain_events(session)
    narrow = register(
        [["1565", "Fresh & Frozen"], ["2041", "Hickson & Black’s Café"]],
        header=["CASEREFERENCE", "PREMISESNAME"],
    ).encode()

    result = import_register(session, narrow, "narrow.csv", man, None)

    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    assert chain_events(session) == events
    fresh = by_licence(session, man)["1565"]
    assert (fresh.postcode, fresh.licence_holder, fresh.dps) == (
        "M40 1UB",
        "Mrs Ada Example",
        "Mr Ben Sample",
    )
    assert fresh.licensable_activities.startswith("Recorded Music")


# ---- personal data ------------------------------------------------------------------


def test_holder_and_supervisor_names_stay_off_the_chain(session, man) -> None:
    import_register(session, messy(), "register.csv", man, None)
    import_register(session, _changed(LICENCEHOLDER="Mr Erin Fictional"), "register.csv", man, None)

    events = session.scalars(select(AuditEvent)).all()
    assert events
    for event in events:
        text = f"{event.payload} {event.reason or ''}"
        for person in PEOPLE:
            assert person not in text, (event.event, text)
    kept = {(v.field, v.new_value) for v in session.scalars(select(AuditPersonalValue)).all()}
    assert {
        ("licence_holder", "Mrs Ada Example"),
        ("dps", "Mr Ben Sample"),
        ("licence_holder", "Carys Invented"),
        ("dps", "Dafydd Madeup"),
        ("licence_holder", "Mr Erin Fictional"),
    } <= kept
    registered = next(e for e in events if e.event == "premises_registered")
    fields = json.loads(registered.payload)["fields"]
    assert fields["licence_holder"] == {"personal": True}
    assert fields["dps"] == {"personal": True}
    assert verify_chains(session).ok


# ---- refused files --------------------------------------------------------------------


def test_file_without_the_register_columns_is_refused_and_writes_nothing(session, man) -> None:
    before = (total(session, AuditEvent), total(session, RegisterImportRun))
    data = b"Name,Address,Postcode\r\nThe Crown,1 High St,M1 1AA\r\n"

    with pytest.raises(ValidationFailed) as refused:
        import_register(session, data, "wrong.csv", man, None)

    assert refused.value.message == (
        "This is not a PremisesLicences register: the header lacks CASEREFERENCE, PREMISESNAME"
    )
    assert "register_file" in refused.value.errors
    assert total(session, Premises) == 0
    assert (total(session, AuditEvent), total(session, RegisterImportRun)) == before


def test_empty_file_is_refused(session, man) -> None:
    with pytest.raises(ValidationFailed, match="lacks CASEREFERENCE"):
        import_register(session, b"", "empty.csv", man, None)
    assert total(session, RegisterImportRun) == 0


def test_file_unreadable_as_csv_is_refused_and_earlier_rows_are_not_kept(session, man) -> None:
    before = total(session, AuditEvent)
    # An unterminated quote swallows the rest of the file into one enormous field.
    data = register([rec("1", "Fine Bar"), '2,"' + "x" * 200_000]).encode()

    with pytest.raises(ValidationFailed, match="cannot be read as CSV after line 2"):
        import_register(session, data, "broken.csv", man, None)

    assert total(session, Premises) == 0  # the valid first row was rolled back too
    assert total(session, AuditEvent) == before
    assert total(session, RegisterImportRun) == 0


def test_council_user_may_not_import_and_nothing_is_written(session, man, make_user) -> None:
    council = make_user("council", "MAN")
    before = total(session, AuditEvent)

    with pytest.raises(Forbidden):
        import_register(session, messy(), "register.csv", man, council)

    assert total(session, Premises) == 0
    assert total(session, AuditEvent) == before


def test_officer_import_is_recorded_against_the_officer(session, man, make_user) -> None:
    officer = make_user("officer")

    result = import_register(session, messy(), "register.csv", man, officer)

    run = session.get(RegisterImportRun, result.run_id)
    assert run.imported_by_id == officer.id
    registered = session.scalars(
        select(AuditEvent).where(AuditEvent.event == "premises_registered")
    ).all()
    assert len(registered) == 4
    assert {e.actor_id for e in registered} == {officer.id}
    assert {p.case_officer_id for p in by_licence(session, man).values()} == {None}


# ---- row rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"PREMISESNAME": "  "}, "PREMISESNAME is empty"),
        ({"PREMISESNAME": "NA"}, "PREMISESNAME is empty"),
        ({"CASEREFERENCE": "N/A"}, "CASEREFERENCE (licence number) is empty"),
        ({"STATUSLABEL": "Pending"}, "STATUSLABEL 'pending' is not a known licence status"),
        ({"UPRN": "1234567890123"}, "UPRN: A UPRN is a number of up to 12 digits"),
        ({"POSTCODE": "Manchester City Centre"}, "POSTCODE is longer than 16 characters (22)"),
        ({"PREMISESNAME": "x" * 301}, "PREMISESNAME is longer than 300 characters (301)"),
        ({"CASEREFERENCE": "9" * 65}, "CASEREFERENCE is longer than 64 characters (65)"),
        ({"LICENCEHOLDER": "y" * 301}, "LICENCEHOLDER is longer than 300 characters (301)"),
    ],
)
def test_bad_value_rejects_the_row_only(session, man, fields, reason) -> None:
    base = {"CASEREFERENCE": "500", "PREMISESNAME": "Bad Row Bar"} | fields
    bad = rec(base.pop("CASEREFERENCE"), base.pop("PREMISESNAME"), **base)
    data = register([rec("400", "Good Row Bar"), bad, rec("600", "Also Good")]).encode()

    result = import_register(session, data, "r.csv", man, None)

    assert result.rejections == [(3, reason)]
    assert (result.created, result.rejected) == (2, 1)
    assert set(by_licence(session, man)) == {"400", "600"}


@pytest.mark.parametrize(
    ("label", "status"),
    [
        ("Current", "current"),
        ("", "current"),
        ("SURRENDERED", "surrendered"),
        ("Revoked", "revoked"),
        ("Granted", "current"),
        (" lapsed ", "lapsed"),
    ],
)
def test_status_labels(session, man, label, status) -> None:
    import_register(
        session, register([rec("1", "Bar", STATUSLABEL=label)]).encode(), "r", man, None
    )
    assert by_licence(session, man)["1"].licence_status == status


def test_long_row_with_only_empty_extra_cells_is_imported(session, man) -> None:
    data = register([rec("1", "Trailing Commas") + ["", "  "], rec("2", "Extra") + ["surprise"]])

    result = import_register(session, data.encode(), "r.csv", man, None)

    assert (result.created, result.rejected) == (1, 1)
    assert result.rejections == [(3, "the row has 37 fields; the header has 36")]


def test_header_names_are_trimmed_and_case_insensitive(session, man) -> None:
    data = register(
        [["7", "Lower Case Bar", " m1 2ab"]], header=[" casereference", "PremisesName ", "postcode"]
    )

    result = import_register(session, data.encode(), "r.csv", man, None)

    assert result.created == 1
    assert by_licence(session, man)["7"].postcode == "M1 2AB"


def test_imports_are_per_authority(session, man, make_authority) -> None:
    other = make_authority("SAL", "Salford City Council")
    import_register(session, messy(), "register.csv", man, None)

    result = import_register(session, messy(), "register.csv", other, None)

    assert result.created == 4
    assert len(by_licence(session, other)) == 4
    assert total(session, Premises) == 8


# ---- the committed fixtures --------------------------------------------------------------


def test_manchester_style_fixture(session, man) -> None:
    data = (FIXTURES / "register-manchester-style.csv").read_bytes()
    assert b"\r\n" in data and b"\x92" in data

    result = import_register(session, data, "register-manchester-style.csv", man, None)

    assert counts(result) == {
        "read": 7,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 4,
        "rejected": 0,
    }
    premises = by_licence(session, man)
    assert premises["2041"].name == "Hickson & Black’s Café"
    assert premises["2041"].postcode == "M1 1JQ"
    assert premises["2041"].licensable_activities == "Live Music; Recorded Music; Supply of alcohol"
    assert premises["1565"].postcode == "M40 1UB"
    assert premises["1823"].licensable_activities == "Supply of alcohol"
    again = import_register(session, data, "register-manchester-style.csv", man, None)
    assert (again.created, again.updated, again.unchanged, again.skipped) == (0, 0, 3, 4)


def test_geocoded_fixture_imports_coordinates_and_na(session, man) -> None:
    data = (FIXTURES / "register-geocoded.csv").read_bytes()

    result = import_register(session, data, "register-geocoded.csv", man, None)

    assert counts(result) == {
        "read": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "rejected": 0,
    }
    premises = by_licence(session, man)
    assert (premises["1834"].latitude, premises["1834"].longitude) == (53.4746719, -2.245182)
    assert (premises["2290"].latitude, premises["2290"].longitude) == (53.4768598, -2.2372521)
    assert (premises["2041"].latitude, premises["2041"].longitude) == (None, None)
    assert premises["2041"].opening_hours == ""
    assert premises["1834"].licence_holder == "Example Brewers Limited"
    events = chain_events(session)
    again = import_register(session, data, "register-geocoded.csv", man, None)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert chain_events(session) == events


def test_geocoded_extract_after_the_full_register_adds_coordinates(session, man) -> None:
    import_register(
        session, (FIXTURES / "register-manchester-style.csv").read_bytes(), "full.csv", man, None
    )
    last = _last_event_id(session)

    result = import_register(
        session, (FIXTURES / "register-geocoded.csv").read_bytes(), "geo.csv", man, None
    )

    assert (result.created, result.updated, result.unchanged) == (2, 1, 0)
    cafe = by_licence(session, man)["2041"]
    # The extract has NA where the full register had hours and entertainment.
    assert cafe.opening_hours == ""
    assert [e.event for e in _new_events(session, last) if e.premises_id == cafe.id] == [
        "details_changed"
    ]


@pytest.mark.parametrize(
    ("latitude", "reason"),
    [
        ("north", "LATITUDE: Enter the latitude as a number"),
        ("95", "LATITUDE: The latitude must be between -90 and 90"),
    ],
)
def test_bad_coordinates_reject_the_row(session, man, latitude, reason) -> None:
    header = [*HEADER, "addr", "latitude", "longitude"]
    data = register(
        [
            rec("1", "Good") + ["addr", "53.47", "-2.24"],
            rec("2", "Bad") + ["addr", latitude, "-2.24"],
        ],
        header=header,
    ).encode()

    result = import_register(session, data, "geo.csv", man, None)

    assert result.rejections == [(3, reason)]
    assert by_licence(session, man)["1"].latitude == 53.47
