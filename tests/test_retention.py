"""`licensing retention run` and `licensing retention erase-person`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from licensing.audit.models import SYSTEM_CHAIN, AuditEvent
from licensing.audit.services import verify_chains
from licensing.evidence import store
from licensing.evidence.models import Attachment
from licensing.incidents.models import Incident, IncidentPerson, PremisesIncidentLink
from licensing.maintenance.retention import cutoff_for

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=31 * 30)  # about 30 months
YOUNG = NOW - timedelta(days=31 * 6)
WITNESS = {
    "name": "Jane Witherspoon",
    "phone": "07700 900123",
    "email": "jane.witherspoon@example.org",
    "address": "12 Acacia Avenue, Bootle",
}


def run(app: Flask, *args: str) -> Result:
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def add_incident(
    session: Session,
    ref: str,
    counted_at: datetime,
    *,
    people: int = 0,
    link: tuple[int, str] | None = None,
) -> int:
    incident = Incident(
        source="rms", source_ref=ref, counted_at=counted_at, category="Public order"
    )
    session.add(incident)
    session.flush()
    for n in range(people):
        session.add(IncidentPerson(incident_id=incident.id, role="witness", name=f"Person {n}"))
    if link is not None:
        premises_id, status = link
        session.add(
            PremisesIncidentLink(
                premises_id=premises_id, incident_id=incident.id, status=status, method="proximity"
            )
        )
    return incident.id


@pytest.fixture
def incidents(session: Session, world: dict[str, Any]) -> dict[str, int]:
    """One incident of each case the rule must tell apart."""
    premises_id = world["premises"].id
    ids = {
        "old_confirmed": add_incident(
            session, "OLD-CONF", OLD, people=1, link=(premises_id, "confirmed")
        ),
        "old_suggested": add_incident(
            session, "OLD-SUGG", OLD, people=1, link=(premises_id, "suggested")
        ),
        "young_unlinked": add_incident(session, "YOUNG", YOUNG, people=1),
        "old_rejected": add_incident(
            session, "OLD-REJ", OLD, people=2, link=(premises_id, "rejected")
        ),
        "old_unlinked": add_incident(session, "OLD-NONE", OLD, people=1),
        "old_attached": add_incident(session, "OLD-ATT", OLD, people=1),
    }
    data = b"%PDF-1.4\n% retention test\n%%EOF\n"
    session.add(
        Attachment(
            incident_id=ids["old_attached"],
            sha256=store.put(data),
            size=len(data),
            media_type="application/pdf",
        )
    )
    session.commit()
    return ids


def snapshot(session: Session) -> dict[str, Any]:
    session.expire_all()
    return {
        "incidents": sorted(session.scalars(select(Incident.id))),
        "people": sorted(session.scalars(select(IncidentPerson.id))),
        "links": sorted(session.scalars(select(PremisesIncidentLink.id))),
        "events": session.scalar(select(func.count()).select_from(AuditEvent)),
    }


def test_dry_run_reports_the_counts_and_changes_nothing(
    app: Flask, session: Session, incidents: dict[str, int]
) -> None:
    before = snapshot(session)

    result = run(app, "retention", "run", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "incidents would delete 2" in result.output
    assert "people would delete 3" in result.output
    assert "rejected links would delete 1" in result.output
    assert "incidents skipped 1" in result.output
    assert f"skipped incident {incidents['old_attached']}: has attachments" in result.output
    assert (
        f"incident ids: {incidents['old_rejected']}, {incidents['old_unlinked']}" in result.output
    )
    assert "Dry run: nothing was changed." in result.output
    assert snapshot(session) == before


def test_run_deletes_exactly_the_old_unlinked_incidents_and_writes_one_event(
    app: Flask, session: Session, incidents: dict[str, int]
) -> None:
    before = snapshot(session)

    result = run(app, "retention", "run")

    assert result.exit_code == 0, result.output
    after = snapshot(session)
    gone = set(before["incidents"]) - set(after["incidents"])
    assert gone == {incidents["old_rejected"], incidents["old_unlinked"]}
    for kept in ("old_confirmed", "old_suggested", "young_unlinked", "old_attached"):
        assert incidents[kept] in after["incidents"]
    assert len(before["people"]) - len(after["people"]) == 3
    assert len(before["links"]) - len(after["links"]) == 1
    # Never an orphan: no person or link points at a deleted incident.
    assert not session.scalars(
        select(IncidentPerson.id).where(IncidentPerson.incident_id.in_(gone))
    ).all()
    assert not session.scalars(
        select(PremisesIncidentLink.id).where(PremisesIncidentLink.incident_id.in_(gone))
    ).all()

    assert after["events"] == before["events"] + 1
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert event.event == "retention_run"
    assert event.chain == SYSTEM_CHAIN
    payload = json.loads(event.payload)
    assert payload["incidents_deleted"] == 2
    assert payload["people_deleted"] == 3
    assert payload["links_deleted"] == 1
    assert payload["incidents_skipped"] == 1
    assert payload["months"] == 24
    assert verify_chains(session).ok

    again = run(app, "retention", "run")
    assert "incidents deleted 0" in again.output


def test_the_period_comes_from_the_configuration(
    app: Flask, session: Session, incidents: dict[str, int]
) -> None:
    app.config["RETENTION_UNLINKED_INCIDENT_MONTHS"] = "36"  # as the environment sets it
    before = snapshot(session)

    result = run(app, "retention", "run")

    assert result.exit_code == 0, result.output
    assert "(36 months)" in result.output
    assert "incidents deleted 0" in result.output
    assert snapshot(session)["incidents"] == before["incidents"]


def test_cutoff_is_calendar_months() -> None:
    assert cutoff_for(24, datetime(2026, 3, 31, tzinfo=UTC)) == datetime(2024, 3, 31, tzinfo=UTC)
    assert cutoff_for(1, datetime(2026, 3, 31, tzinfo=UTC)) == datetime(2026, 2, 28, tzinfo=UTC)


# ---- erasure on request ----------------------------------------------------------------


@pytest.fixture
def witness(session: Session, world: dict[str, Any]) -> IncidentPerson:
    incident_id = add_incident(session, "RMS-ERASE", YOUNG)
    person = IncidentPerson(incident_id=incident_id, role="witness", **WITNESS)
    session.add(person)
    session.commit()
    return person


def audit_text(session: Session) -> str:
    """Every column of every audit row, as text: what a search of the trail would see."""
    rows = session.execute(text("SELECT * FROM audit_events")).all()
    values = session.execute(text("SELECT * FROM audit_personal_values")).all()
    return "\n".join(" | ".join(str(v) for v in row) for row in [*rows, *values])


def test_erase_person_blanks_the_details_and_records_it_without_them(
    app: Flask, session: Session, world: dict[str, Any], witness: IncidentPerson
) -> None:
    officer = world["officer"]

    result = run(
        app,
        "retention",
        "erase-person",
        str(witness.id),
        "--reason",
        "Erasure request DPA-2026-0042",
        "--by",
        officer.email,
    )

    assert result.exit_code == 0, result.output
    assert "Erased name, phone, email, address of the witness" in result.output
    session.expire_all()
    person = session.get(IncidentPerson, witness.id)
    assert person is not None
    assert (person.name, person.phone, person.email, person.address) == ("", "", "", "")
    assert person.role == "witness"

    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert event.event == "incident_person_erased"
    assert event.chain == SYSTEM_CHAIN
    assert event.actor_id == officer.id
    assert event.reason == "Erasure request DPA-2026-0042"
    payload = json.loads(event.payload)
    assert payload["incident_person_id"] == witness.id
    assert payload["incident_id"] == witness.incident_id
    assert payload["fields"] == ["name", "phone", "email", "address"]
    trail = audit_text(session).casefold()
    for value in WITNESS.values():
        assert value.casefold() not in trail
    assert "witherspoon" not in trail
    assert verify_chains(session).ok
    verify = run(app, "audit", "verify")
    assert verify.exit_code == 0 and verify.output.startswith("OK")


def test_erase_person_refuses_a_reason_holding_the_details(
    app: Flask, session: Session, witness: IncidentPerson
) -> None:
    before = snapshot(session)

    result = run(
        app,
        "retention",
        "erase-person",
        str(witness.id),
        "--reason",
        "Jane Witherspoon asked us to",
    )

    assert result.exit_code == 1
    assert "repeats a value being erased" in result.output
    assert snapshot(session) == before
    session.expire_all()
    person = session.get(IncidentPerson, witness.id)
    assert person is not None and person.name == WITNESS["name"]


def test_erase_person_needs_a_reason_and_a_real_person(app: Flask, session: Session) -> None:
    missing = run(app, "retention", "erase-person", "999999", "--reason", "Request 1")
    assert missing.exit_code == 1
    assert "not found" in missing.output
    no_reason = run(app, "retention", "erase-person", "1")
    assert no_reason.exit_code == 2


def test_erase_person_also_clears_their_details_from_the_incident_text(
    app: Flask, session: Session, world: dict[str, Any], witness: IncidentPerson
) -> None:
    """Once the person row is blank, a bundle's redaction could no longer find the name
    in free text: so the erasure takes it out of the incident's text as well."""
    incident = session.get(Incident, witness.incident_id)
    assert incident is not None
    incident.description = "Jane Witherspoon (07700 900123) saw the fight; another man ran off"
    session.commit()
    result = run(app, "retention", "erase-person", str(witness.id), "--reason", "DPA-2026-7")
    assert result.exit_code == 0, result.output
    session.expire_all()
    incident = session.get(Incident, witness.incident_id)
    assert incident is not None
    assert incident.description == (
        "[witness details erased] ([witness details erased]) saw the fight; another man ran off"
    )
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert json.loads(event.payload)["incident_text_fields"] == ["description"]
