"""Evidence bundles through the services: contents, redaction, determinism, the manifest,
issuing, versions, sharing, and the review guard. PDFs are read back with pypdf."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.models import AuditEvent
from licensing.audit.services import verify_chains
from licensing.errors import Conflict, Forbidden, NotFound, Refused, ValidationFailed
from licensing.evidence import services as bundles
from licensing.evidence import store
from licensing.evidence.models import Bundle, BundleItem
from licensing.evidence.packaging import verify_zip
from licensing.incidents.services import record_incident
from licensing.notifications.models import OutboxEmail
from licensing.premises.models import ReviewApplication
from tests.conftest import move

WITNESS = {
    "role": "witness",
    "name": "Janet Quayle",
    "phone": "07700 900123",
    "email": "janet.quayle@example.org",
    "address": "14 Rydal Street, Liverpool",
}
VICTIM = {"role": "victim", "name": "Peter Okonjo", "phone": "0151 496 0000"}
SECRETS = (
    "Janet Quayle",
    "07700 900123",
    "janet.quayle@example.org",
    "14 Rydal Street",
    "Peter Okonjo",
    "0151 496 0000",
    "stray.person@example.com",
    "07911 123456",
)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _incident(session: Session, officer: Any, premises: Any, ref: str, **extra: Any) -> Any:
    data = {
        "source": "rms",
        "source_ref": ref,
        "occurred_at": (datetime.now(UTC) - timedelta(days=extra.pop("days_ago", 3))).isoformat(),
        "category": extra.pop("category", "Violence and sexual offences"),
        "description": extra.pop(
            "description",
            "Assault at the door. Janet Quayle saw it and gave her number 07700 900123; "
            "also call stray.person@example.com or 07911 123456.",
        ),
        "location": "Outside the premises",
    }
    data.update(extra)
    return record_incident(session, officer, data, premises=premises).incident


@pytest.fixture
def case(session: Session, world: dict[str, Any]) -> dict[str, Any]:
    """A premises with two incidents (people attached), a warning, and a draft bundle."""
    premises, officer = world["premises"], world["officer"]
    first = _incident(
        session,
        officer,
        premises,
        "RMS-2026-000101",
        personal_data={"people": [WITNESS, VICTIM]},
    )
    second = _incident(
        session,
        officer,
        premises,
        "RMS-2026-000102",
        days_ago=2,
        category="Public order",
        description="Fight in the smoking area; Peter Okonjo hurt.",
        personal_data={"people": [VICTIM]},
    )
    move(session, premises, officer, "warn", reason="Two assaults in a week; Janet Quayle saw one")
    bundle = bundles.create_bundle(
        session, officer, premises, statement="Call 07700 900123 for Janet Quayle."
    )
    return world | {"bundle": bundle, "first": first, "second": second}


def test_a_bundle_holds_the_confirmed_incidents_and_workflow_events_in_date_order(
    session: Session, case: dict[str, Any]
) -> None:
    bundle = case["bundle"]
    items = bundles.items_of(session, bundle)
    kinds = [(item.kind, item.reference) for item in items]
    assert ("incident", "Incident RMS-2026-000101") in kinds
    assert ("incident", "Incident RMS-2026-000102") in kinds
    assert any(kind == "event" and ref.startswith("Warn") for kind, ref in kinds)
    assert [item.occurred_at for item in items] == sorted(item.occurred_at for item in items)
    shared = _flat(_text(store.get(bundle.shared_pdf_sha256)))
    for reference in ("RMS-2026-000101", "RMS-2026-000102"):
        assert reference in shared
    assert case["premises"].licence_number in shared
    assert bundle.reference in shared


def test_the_shared_copy_redacts_people_and_the_police_copy_keeps_them(
    session: Session, case: dict[str, Any]
) -> None:
    bundle = case["bundle"]
    shared = _flat(_text(store.get(bundle.shared_pdf_sha256)))
    police = _flat(_text(store.get(bundle.police_pdf_sha256)))
    for secret in SECRETS:
        assert secret not in shared, secret
    assert "Witness 1" in shared and "Victim 1" in shared
    for secret in ("Janet Quayle", "07700 900123", "janet.quayle@example.org", "Peter Okonjo"):
        assert secret in police, secret
    # Nor anywhere in the shared ZIP, compressed or not.
    archive = zipfile.ZipFile(io.BytesIO(store.get(bundle.shared_zip_sha256)))
    for name in archive.namelist():
        content = archive.read(name)
        text = (
            _flat(_text(content)) if name.endswith(".pdf") else content.decode("utf-8", "replace")
        )
        for secret in SECRETS:
            assert secret not in text, (name, secret)


def test_the_redaction_log_says_what_and_where_never_the_value(
    session: Session, case: dict[str, Any]
) -> None:
    bundle = case["bundle"]
    log = bundles.redactions_of(session, bundle)
    categories = {entry.category for entry in log}
    assert {"witness name", "witness phone", "victim name"} <= categories
    assert "email address in free text" in categories
    assert "phone number in free text" in categories
    reader = PdfReader(io.BytesIO(store.get(bundle.shared_pdf_sha256)))
    for entry in log:
        assert 1 <= entry.page <= len(reader.pages)
        for secret in SECRETS:
            assert secret not in entry.item and secret not in entry.category
    # The page of an incident's entry is the page where that incident's section starts.
    entry = next(e for e in log if e.item == "Incident RMS-2026-000101")
    assert "RMS-2026-000101" in (reader.pages[entry.page - 1].extract_text() or "")


def test_the_index_page_numbers_point_at_the_sections(
    session: Session, case: dict[str, Any]
) -> None:
    bundle = case["bundle"]
    reader = PdfReader(io.BytesIO(store.get(bundle.shared_pdf_sha256)))
    index = bundles.index_of(bundle)
    assert len(reader.pages) == bundle.page_count
    titles = [title for title, _ in index]
    assert "Incident RMS-2026-000101" in titles and "Chronology" in titles
    for title, page in index:
        assert _flat(title)[:30] in _flat(reader.pages[page - 1].extract_text() or ""), title


def test_building_is_reproducible(session: Session, case: dict[str, Any]) -> None:
    bundle = case["bundle"]
    police, shared = bundles.render_again(session, bundle)
    assert shared == store.get(bundle.shared_pdf_sha256)
    assert police == store.get(bundle.police_pdf_sha256)
    before = (bundle.shared_zip_sha256, bundle.police_zip_sha256)
    bundles.rebuild(session, case["officer"], bundle, bundle.lock_version)
    assert (bundle.shared_zip_sha256, bundle.police_zip_sha256) == before


def test_the_manifest_lists_every_file_and_the_audit_head(
    session: Session, case: dict[str, Any]
) -> None:
    bundle = case["bundle"]
    result = verify_zip(store.get(bundle.shared_zip_sha256))
    assert result.ok, result.problems
    manifest = result.manifest
    assert manifest is not None
    assert manifest["reference"] == bundle.reference and manifest["version"] == 1
    assert manifest["premises"]["licence_number"] == case["premises"].licence_number
    assert manifest["variant"] == "shared"
    head = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.premises_id == case["premises"].id)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    assert head is not None
    assert manifest["audit_chain_head"]["hash"] == head.content_hash
    assert manifest["files"][0]["sha256"] == bundle.shared_pdf_sha256


def test_verify_detects_a_changed_byte_in_any_file(session: Session, case: dict[str, Any]) -> None:
    data = store.get(case["bundle"].shared_zip_sha256)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert verify_zip(data).ok
    for info in archive.infolist():
        # Flip one byte inside each member's stored data.
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        position = start + info.compress_size // 2
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        assert not verify_zip(bytes(tampered)).ok, info.filename


def test_verify_detects_a_rewritten_zip_whose_manifest_was_edited_to_match(
    session: Session, case: dict[str, Any]
) -> None:
    data = store.get(case["bundle"].shared_zip_sha256)
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name.endswith(".pdf"):
                content = content + b"%tampered\n"
            target.writestr(name, content)
    assert not verify_zip(out.getvalue()).ok


def test_leaving_an_item_out_needs_a_reason_and_puts_it_on_the_police_schedule(
    session: Session, case: dict[str, Any]
) -> None:
    bundle, officer = case["bundle"], case["officer"]
    item = next(i for i in bundles.items_of(session, bundle) if i.reference.endswith("000102"))
    with pytest.raises(ValidationFailed):
        bundles.set_inclusion(session, officer, bundle, item.id, False, "  ", bundle.lock_version)
    bundles.set_inclusion(
        session, officer, bundle, item.id, False, "Not relevant: off-site", bundle.lock_version
    )
    shared = _flat(_text(store.get(bundle.shared_pdf_sha256)))
    police = _flat(_text(store.get(bundle.police_pdf_sha256)))
    assert "RMS-2026-000102" not in shared
    assert "Schedule of unused material" in police and "Not relevant: off-site" in police
    assert "Schedule of unused material" not in shared
    assert "Not relevant" not in shared


def test_a_stale_lock_version_is_a_conflict(session: Session, case: dict[str, Any]) -> None:
    bundle, officer = case["bundle"], case["officer"]
    seen = bundle.lock_version
    bundles.update_statement(session, officer, bundle, "First", seen)
    with pytest.raises(Conflict):
        bundles.update_statement(session, officer, bundle, "Second", seen)
    assert session.get(Bundle, bundle.id).statement == "First"  # type: ignore[union-attr]


def test_only_a_supervisor_issues_and_an_issued_bundle_never_changes(
    session: Session, case: dict[str, Any]
) -> None:
    bundle, officer, supervisor = case["bundle"], case["officer"], case["supervisor"]
    with pytest.raises(Forbidden):
        bundles.issue_bundle(session, officer, bundle, bundle.lock_version)
    bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)
    assert bundle.status == "issued"
    event = session.scalar(
        select(AuditEvent).where(AuditEvent.event == "bundle_issued").order_by(AuditEvent.id.desc())
    )
    assert event is not None
    assert json.loads(event.payload)["shared_zip_sha256"] == bundle.shared_zip_sha256
    item = bundles.items_of(session, bundle)[0]
    with pytest.raises(Refused):
        bundles.set_inclusion(session, officer, bundle, item.id, False, "x", bundle.lock_version)
    with pytest.raises(Refused):
        bundles.rebuild(session, officer, bundle, bundle.lock_version)
    draft = bundles.new_version(session, officer, bundle)
    assert (draft.reference, draft.version, draft.status) == (bundle.reference, 2, "draft")
    with pytest.raises(Refused):
        bundles.new_version(session, officer, bundle)  # one draft at a time
    assert verify_chains(session).ok


def test_a_new_version_keeps_the_exclusions_and_picks_up_new_evidence(
    session: Session, case: dict[str, Any]
) -> None:
    bundle, officer, supervisor = case["bundle"], case["officer"], case["supervisor"]
    item = next(i for i in bundles.items_of(session, bundle) if i.reference.endswith("000102"))
    bundles.set_inclusion(
        session, officer, bundle, item.id, False, "Duplicate", bundle.lock_version
    )
    bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)
    _incident(session, officer, case["premises"], "RMS-2026-000103", days_ago=1)
    draft = bundles.new_version(session, officer, bundle)
    items = {i.reference: i for i in bundles.items_of(session, draft)}
    assert items["Incident RMS-2026-000102"].included is False
    assert items["Incident RMS-2026-000102"].exclusion_reason == "Duplicate"
    assert items["Incident RMS-2026-000103"].included is True


def test_sharing_emails_the_authoritys_council_users_only(
    session: Session, case: dict[str, Any], make_user: Any
) -> None:
    bundle, supervisor = case["bundle"], case["supervisor"]
    with pytest.raises(Refused):
        bundles.share_bundle(session, supervisor, bundle)  # not issued yet
    bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)
    with pytest.raises(Forbidden):
        bundles.share_bundle(session, case["officer"], bundle)
    assert bundles.share_bundle(session, supervisor, bundle) == 1
    assert bundles.share_bundle(session, supervisor, bundle) == 0  # once
    emails = session.scalars(select(OutboxEmail)).all()
    assert [e.recipient for e in emails] == [case["council"].email]
    assert bundle.label in emails[0].subject and "/bundles/" in emails[0].text_body


def test_council_users_open_only_bundles_shared_with_their_authority(
    session: Session, case: dict[str, Any]
) -> None:
    bundle, supervisor = case["bundle"], case["supervisor"]
    council, other = case["council"], case["other_council"]
    with pytest.raises(NotFound):
        bundles.get_bundle(session, council, bundle.id)  # not shared yet
    bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)
    bundles.share_bundle(session, supervisor, bundle)
    assert bundles.get_bundle(session, council, bundle.id) is bundle
    with pytest.raises(NotFound):
        bundles.get_bundle(session, other, bundle.id)
    assert bundles.list_bundles(session, other) == []
    with pytest.raises(NotFound):
        bundles.file_of(session, council, bundle, "pdf", "police")
    data, name = bundles.file_of(session, council, bundle, "zip", "shared")
    assert name.endswith("-shared.zip") and verify_zip(data).ok
    bundles.acknowledge(session, council, bundle)
    assert bundle.acknowledged_by_id == council.id
    with pytest.raises(NotFound):
        bundles.acknowledge(session, other, bundle)


def test_a_review_needs_an_issued_bundle_and_records_it(
    session: Session, case: dict[str, Any]
) -> None:
    premises, supervisor = case["premises"], case["supervisor"]
    from licensing.premises import services as premises_services

    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with pytest.raises(Refused, match="issued evidence bundle"):
        premises_services.apply_event(
            session,
            premises,
            supervisor,
            "apply_for_review",
            premises.version,
            "Persistent violence",
            {"application_date": yesterday},
        )
    bundle = case["bundle"]
    bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)
    premises_services.apply_event(
        session,
        premises,
        supervisor,
        "apply_for_review",
        premises.version,
        "Persistent violence",
        {"application_date": yesterday},
    )
    review = session.scalar(
        select(ReviewApplication).where(ReviewApplication.premises_id == premises.id)
    )
    assert review is not None and review.bundle_id == bundle.id


def test_a_period_in_the_future_or_backwards_is_refused(
    session: Session, case: dict[str, Any]
) -> None:
    today = datetime.now(UTC).date()
    with pytest.raises(ValidationFailed) as backwards:
        bundles.create_bundle(
            session,
            case["officer"],
            case["premises"],
            period_from=today - timedelta(days=1),
            period_to=today - timedelta(days=10),
        )
    assert "period_from" in backwards.value.errors
    with pytest.raises(ValidationFailed) as future:
        bundles.create_bundle(
            session, case["officer"], case["premises"], period_to=today + timedelta(days=40)
        )
    assert "period_to" in future.value.errors
    assert (
        session.scalar(select(BundleItem).where(BundleItem.bundle_id > case["bundle"].id)) is None
    )


def test_council_users_cannot_build(session: Session, case: dict[str, Any]) -> None:
    with pytest.raises(Forbidden):
        bundles.create_bundle(session, case["council"], case["premises"])


def test_comments_open_only_once_shared_and_admins_never_open_bundles(
    session: Session, case: dict[str, Any]
) -> None:
    bundle, supervisor = case["bundle"], case["supervisor"]
    with pytest.raises(Refused, match="once the bundle is shared"):
        bundles.add_comment(session, supervisor, bundle, "Internal: check the CCTV first")
    assert bundles.comments_of(session, bundle) == []
    bundles.issue_bundle(session, supervisor, bundle, bundle.lock_version)
    bundles.share_bundle(session, supervisor, bundle)
    bundles.add_comment(session, case["council"], bundle, "Listed for 3 June")
    assert [c.body for c in bundles.comments_of(session, bundle)] == ["Listed for 3 June"]
    with pytest.raises(Forbidden):
        bundles.get_bundle(session, case["admin"], bundle.id)


def test_a_full_disk_while_storing_a_bundle_saves_nothing(
    session: Session, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(_data: bytes) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "put", full)
    with pytest.raises(store.StorageFailed, match="could not be stored") as raised:
        bundles.create_bundle(session, world["officer"], world["premises"])
    assert raised.value.status == 507
    assert session.scalars(select(Bundle)).all() == []
    assert session.scalars(select(BundleItem)).all() == []
