"""Unnoticed account misuse: every sign-in, failure, lockout, unlock, account created,
disabled or enabled, and role change is an event on the system audit chain, with ids and
facts only (never a typed email or a password), and a supervisor or admin can read an
account's events on its page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.audit.models import SYSTEM_CHAIN, AuditEvent
from licensing.audit.services import verify_chains
from licensing.auth import accounts
from licensing.auth.services import authenticate
from licensing.errors import Refused
from tests.conftest import PASSWORD, csrf_from, sign_in

WRONG = "Tr0ub4dor&3-guess"


def events(session: Session, name: str) -> list[AuditEvent]:
    """The system-chain events of one kind, oldest first."""
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == SYSTEM_CHAIN, AuditEvent.event == name)
            .order_by(AuditEvent.seq)
        )
    )


def payload(event: AuditEvent) -> dict[str, Any]:
    return json.loads(event.payload)


def every_stored_text(session: Session) -> str:
    """Everything the audit trail holds, as one text, to search for what must not be."""
    rows = session.scalars(select(AuditEvent)).all()
    return "\n".join(f"{r.event} {r.reason or ''} {r.payload}" for r in rows)


def post_sign_in(client: FlaskClient, email: str, password: str) -> int:
    token = csrf_from(client.get("/sign-in").get_data(as_text=True))
    response = client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )
    return response.status_code


def test_sign_in_is_audited_with_the_address_and_no_email(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    assert post_sign_in(client, officer.email, PASSWORD) == 302

    [signed_in] = events(session, "signed_in")
    assert signed_in.actor_id == officer.id
    assert payload(signed_in) == {"user_id": officer.id, "address": "198.51.100.23"}
    assert officer.email not in every_stored_text(session)


def test_failed_sign_in_is_audited_with_user_id_never_the_typed_email(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    assert post_sign_in(client, officer.email, WRONG) == 200
    assert post_sign_in(client, "no.such.person@police.example", WRONG) == 200

    known, unknown = events(session, "sign_in_failed")
    assert payload(known) == {
        "user_id": officer.id,
        "reason": "wrong_password",
        "address": "198.51.100.23",
    }
    assert payload(unknown) == {
        "user_id": None,
        "reason": "unknown_account",
        "address": "198.51.100.23",
    }
    assert known.actor_id is None and unknown.actor_id is None
    stored = every_stored_text(session)
    assert "no.such.person" not in stored and officer.email not in stored
    assert WRONG not in stored and PASSWORD not in stored


def test_a_disabled_or_locked_account_signing_in_is_audited_as_such(
    session: Session, world: dict[str, Any]
) -> None:
    officer, supervisor, admin = world["officer"], world["supervisor"], world["admin"]
    accounts.set_active(session, admin, supervisor, False)
    for _ in range(10):
        authenticate(session, officer.email, WRONG)

    authenticate(session, supervisor.email, PASSWORD)
    authenticate(session, officer.email, PASSWORD)

    reasons = [
        (payload(e)["user_id"], payload(e)["reason"]) for e in events(session, "sign_in_failed")
    ]
    assert reasons[-2:] == [(supervisor.id, "disabled"), (officer.id, "locked")]


def test_lockout_is_audited_once(session: Session, world: dict[str, Any]) -> None:
    officer = world["officer"]
    for _ in range(13):
        authenticate(session, officer.email, WRONG)

    [locked] = events(session, "account_locked")
    assert locked.actor_id is None
    assert payload(locked) == {"user_id": officer.id, "failed_sign_ins": 10}
    assert len(events(session, "sign_in_failed")) == 13


def test_unlock_is_audited_with_the_admin(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer, admin = world["officer"], world["admin"]
    for _ in range(10):
        authenticate(session, officer.email, WRONG)
    sign_in(client, admin)
    page = client.get(f"/admin/users/{officer.id}").get_data(as_text=True)
    client.post(f"/admin/users/{officer.id}/unlock", data={"csrf_token": csrf_from(page)})

    [unlocked] = events(session, "account_unlocked")
    assert unlocked.actor_id == admin.id
    assert payload(unlocked)["user_id"] == officer.id
    assert payload(unlocked)["failed_sign_ins"] == 10


def test_role_change_is_audited(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer, admin = world["officer"], world["admin"]
    sign_in(client, admin)
    page = client.get(f"/admin/users/{officer.id}").get_data(as_text=True)
    response = client.post(
        f"/admin/users/{officer.id}/role",
        data={
            "role-csrf_token": csrf_from(page),
            "role-seen_role": "officer",
            "role-seen_authority_id": "",
            "role-role": "council",
            "role-authority": "SEF",
        },
    )
    assert response.status_code == 302

    [changed] = events(session, "role_changed")
    assert changed.actor_id == admin.id  # by whom
    assert payload(changed) == {
        "user_id": officer.id,
        "from_role": "officer",
        "to_role": "council",
        "from_authority_id": None,
        "to_authority_id": world["sef"].id,
    }


def test_disable_and_enable_are_audited(session: Session, world: dict[str, Any]) -> None:
    officer, admin = world["officer"], world["admin"]
    accounts.set_active(session, admin, officer, False)
    accounts.set_active(session, admin, officer, False)  # already disabled: no event
    accounts.set_active(session, admin, officer, True)

    [disabled] = events(session, "user_disabled")
    [enabled] = events(session, "user_enabled")
    assert (disabled.actor_id, payload(disabled)) == (admin.id, {"user_id": officer.id})
    assert (enabled.actor_id, payload(enabled)) == (admin.id, {"user_id": officer.id})


def test_a_refused_change_is_not_audited(session: Session, world: dict[str, Any]) -> None:
    admin = world["admin"]
    with pytest.raises(Refused):
        accounts.set_active(session, admin, admin, False)
    session.rollback()
    assert events(session, "user_disabled") == []


def test_user_created_by_an_admin_is_audited_with_the_admin(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    sign_in(client, admin)
    page = client.get("/admin/users/new").get_data(as_text=True)
    client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf_from(page),
            "name": "PC Robin Hughes",
            "email": "r.hughes@police.example",
            "role": "officer",
            "authority": "",
            "password": "plaid-otter-carousel-41",
        },
    )
    created = events(session, "user_created")[-1]
    assert created.actor_id == admin.id
    assert set(payload(created)) == {"user_id", "role", "authority_id"}
    assert "plaid-otter" not in every_stored_text(session)


def test_sign_out_is_audited(client: FlaskClient, session: Session, world: dict[str, Any]) -> None:
    officer = world["officer"]
    sign_in(client, officer)
    token = csrf_from(client.get("/").get_data(as_text=True))
    client.post("/sign-out", data={"csrf_token": token})

    [signed_out] = events(session, "signed_out")
    assert (signed_out.actor_id, payload(signed_out)) == (officer.id, {"user_id": officer.id})


def test_supervisor_sees_the_account_events_of_a_user(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer, admin = world["officer"], world["admin"]
    other = app.test_client()
    post_sign_in(other, officer.email, WRONG)
    post_sign_in(other, officer.email, PASSWORD)
    accounts.set_active(session, admin, officer, False)
    # Another user's events stay off this page.
    authenticate(session, world["council"].email, WRONG)

    sign_in(client, world["supervisor"])
    response = client.get(f"/admin/users/{officer.id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    table = page.split('id="account-events"', 1)[1].split("</table>", 1)[0]
    rows = [row for row in table.split("<tr")[2:]]
    assert [row.split('data-event="', 1)[1].split('"', 1)[0] for row in rows] == [
        "user_disabled",
        "signed_in",
        "sign_in_failed",
        "user_created",
    ]
    assert "Wrong password from 198.51.100.23" in table
    assert admin.name in rows[0]  # who disabled it


def test_account_events_stay_on_a_chain_that_verifies(
    session: Session, world: dict[str, Any]
) -> None:
    officer, admin = world["officer"], world["admin"]
    for _ in range(10):
        authenticate(session, officer.email, WRONG)
    accounts.unlock(session, admin, officer)
    authenticate(session, officer.email, PASSWORD)
    assert verify_chains(session).ok
