"""Attachments in bundles: merged and listed in the manifest, personal-data attachments
only as their redacted copies, and a known personal value in an attachment's text blocks
issuing until resolved."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy.orm import Session

from licensing.errors import Refused
from licensing.evidence import services as bundles
from licensing.evidence import store
from licensing.evidence.attachments import add_attachment
from licensing.evidence.packaging import verify_zip
from licensing.incidents.services import record_incident
from tests.test_attachments import image_bytes, text_pdf

WITNESS = {"role": "witness", "name": "Moira Pendleton", "phone": "07700 900456"}


def _text(pdf: bytes) -> str:
    return " ".join(
        " ".join((page.extract_text() or "").split()) for page in PdfReader(io.BytesIO(pdf)).pages
    )


@pytest.fixture
def incident(session: Session, world: dict[str, Any]) -> Any:
    """A confirmed incident at the Crown with a witness on record."""
    return record_incident(
        session,
        world["officer"],
        {
            "source": "rms",
            "source_ref": "RMS-ATT-1",
            "occurred_at": (datetime.now(UTC) - timedelta(days=4)).isoformat(),
            "category": "Public order",
            "description": "Disorder at the bar.",
            "personal_data": {"people": [WITNESS]},
        },
        premises=world["premises"],
    ).incident


def _attach(
    session: Session, world: dict[str, Any], incident: Any, data: bytes, **extra: Any
) -> Any:
    return add_attachment(
        session,
        world["officer"],
        incident=incident,
        data=data,
        file_name=extra.pop("file_name", "evidence.pdf"),
        description=extra.pop("description", "Door log"),
        holds_personal_data=extra.pop("holds_personal_data", False),
        **extra,
    )


def _members(zip_bytes: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    return {name: archive.read(name) for name in archive.namelist()}


def test_attachments_are_merged_into_the_pdf_and_listed_in_the_manifest(
    session: Session, world: dict[str, Any], incident: Any
) -> None:
    document = _attach(session, world, incident, text_pdf("Door log page for RMS-ATT-1"))
    photo = _attach(
        session, world, incident, image_bytes("JPEG"), file_name="p.jpg", description="Photo"
    )
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    assert bundles.blockers_of(session, bundle) == []
    shared = _text(store.get(bundle.shared_pdf_sha256))
    assert "Door log page for RMS-ATT-1" in shared
    assert "A01" in shared and "A02" in shared
    members = _members(store.get(bundle.shared_zip_sha256))
    attached = {name: data for name, data in members.items() if name.startswith("attachments/")}
    assert sorted(store.sha256_of(data) for data in attached.values()) == sorted(
        [document.sha256, photo.sha256]
    )
    result = verify_zip(store.get(bundle.shared_zip_sha256))
    assert result.ok and result.manifest is not None
    assert {entry["name"] for entry in result.manifest["files"]} == set(members) - {"manifest.json"}


def test_a_personal_data_attachment_needs_a_redacted_copy_before_issue(
    session: Session, world: dict[str, Any], incident: Any
) -> None:
    original = _attach(
        session,
        world,
        incident,
        text_pdf("Statement of Moira Pendleton, tel 07700 900456"),
        description="Witness statement",
        holds_personal_data=True,
    )
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    blockers = bundles.blockers_of(session, bundle)
    assert len(blockers) == 1 and blockers[0].attachment_id == original.id
    assert "Moira" not in blockers[0].problem and "07700" not in blockers[0].problem
    with pytest.raises(Refused, match="cannot be issued"):
        bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    # The police copy still has the original; the shared copy has nothing of it.
    assert "Moira Pendleton" in _text(store.get(bundle.police_pdf_sha256))
    assert "Moira Pendleton" not in _text(store.get(bundle.shared_pdf_sha256))
    assert original.sha256 not in {
        store.sha256_of(d) for d in _members(store.get(bundle.shared_zip_sha256)).values()
    }

    copy = _attach(
        session,
        world,
        incident,
        text_pdf("Statement of Witness 1, tel [redacted]"),
        description="Witness statement (redacted)",
        redacted_copy_of=original,
    )
    bundles.rebuild(session, world["officer"], bundle, bundle.lock_version)
    assert bundles.blockers_of(session, bundle) == []
    shared_members = _members(store.get(bundle.shared_zip_sha256))
    hashes = {store.sha256_of(d) for d in shared_members.values()}
    assert copy.sha256 in hashes and original.sha256 not in hashes
    police_hashes = {
        store.sha256_of(d) for d in _members(store.get(bundle.police_zip_sha256)).values()
    }
    assert original.sha256 in police_hashes
    bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    assert bundle.status == "issued"


def test_a_known_personal_value_in_an_attachment_blocks_issuing(
    session: Session, world: dict[str, Any], incident: Any
) -> None:
    # Not marked as personal data, but the text names the witness: caught by the search.
    leaky = _attach(
        session, world, incident, text_pdf("CCTV request. Contact: M. Pendleton 07700 900456")
    )
    bundle = bundles.create_bundle(session, world["officer"], world["premises"])
    blockers = bundles.blockers_of(session, bundle)
    assert [b.attachment_id for b in blockers] == [leaky.id]
    assert "witness phone" in blockers[0].problem
    assert "900456" not in blockers[0].problem
    with pytest.raises(Refused):
        bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)
    # Leaving the attachment out resolves it.
    item = next(
        i
        for i in bundles.items_of(session, bundle)
        if i.kind == "attachment" and i.ref_id == leaky.id
    )
    bundles.set_inclusion(
        session,
        world["officer"],
        bundle,
        item.id,
        False,
        "Holds a witness's number",
        bundle.lock_version,
    )
    assert bundles.blockers_of(session, bundle) == []
    bundles.issue_bundle(session, world["supervisor"], bundle, bundle.lock_version)


def test_an_attachment_of_an_excluded_incident_stays_out(
    session: Session, world: dict[str, Any], incident: Any
) -> None:
    attached = _attach(session, world, incident, text_pdf("Only with its incident"))
    bundle = bundles.create_bundle(
        session,
        world["officer"],
        world["premises"],
        exclude={("incident", incident.id): "Off-site"},
    )
    assert attached.sha256 not in {
        store.sha256_of(d) for d in _members(store.get(bundle.shared_zip_sha256)).values()
    }
    assert "Only with its incident" not in _text(store.get(bundle.shared_pdf_sha256))
    unused = _text(store.get(bundle.police_pdf_sha256))
    assert "Schedule of unused material" in unused and "Off-site" in unused
