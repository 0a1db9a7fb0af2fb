"""A premises' action plan in its evidence bundle: agreed, item status changes and the
failure appear as items, in chronological order, in both copies (redacted where needed)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from pypdf import PdfReader
from sqlalchemy.orm import Session

from licensing.actionplans import services
from licensing.evidence import services as bundles
from licensing.evidence import store
from licensing.timeutil import london_today
from tests.conftest import move

TODAY = london_today()


def _flat(pdf: bytes) -> str:
    return " ".join(
        " ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages).split()
    )


def test_plan_events_are_bundle_items_in_order_and_in_both_copies(
    session: Session, world: dict[str, Any]
) -> None:
    premises, officer = world["premises"], world["officer"]
    move(session, premises, officer, "warn")
    plan = services.agree_plan(
        session,
        officer,
        premises,
        agreed_on=TODAY,
        review_on=TODAY + timedelta(days=28),
        agreed_with="Dee Supervisor",
        items=[
            services.ItemInput("Two SIA door staff", "Licence holder", TODAY + timedelta(days=7)),
            # A stray phone number in free text is redacted in the shared copy.
            services.ItemInput("Ring 07911 123456 for CCTV", "DPS", TODAY + timedelta(days=7)),
        ],
        reason="Fights at closing time",
    )
    services.update_items(
        session, officer, plan, 1, {plan.items[0].id: "not_done"}, "No door staff at 23:00"
    )
    bundle = bundles.create_bundle(session, officer, premises)
    items = bundles.items_of(session, bundle)
    plan_items = [i for i in items if i.kind == "action_plan"]
    assert [i.reference.split(":")[0].split(" on ")[0] for i in plan_items] == [
        "Action plan agreed",
        "Item not done",
        "Action plan failed",
    ]
    assert [i.occurred_at for i in items] == sorted(i.occurred_at for i in items)
    warn = next(i for i in items if i.kind == "event")
    assert warn.occurred_at < plan_items[0].occurred_at
    police = _flat(store.get(bundle.police_pdf_sha256))
    shared = _flat(store.get(bundle.shared_pdf_sha256))
    for text in (police, shared):
        assert "Action plan failed: an item was not done" in text
        assert "Two SIA door staff" in text
    assert "07911 123456" in police and "07911 123456" not in shared
