"""Accounts: lockout after repeated wrong passwords and the admin's unlock, the password
policy, and the admin's user pages (create, disable and enable, change role), named
after what each stops: guessing, common and personal passwords, an officer reaching
admin pages, an admin locking themselves or everyone out."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from licensing.audit.models import AuditEvent
from licensing.auth import accounts
from licensing.auth.models import User
from licensing.auth.services import (
    MIN_PASSWORD_LENGTH,
    authenticate,
    check_password_strength,
    common_passwords,
    create_user,
)
from licensing.db import get_session
from licensing.errors import Forbidden, Refused, ValidationFailed
from tests.conftest import PASSWORD, csrf_from, sign_in

WRONG = "not-the-password-at-all"
FAILED_MESSAGE = "Enter a correct email address and password"
STRONG = "plaid-otter-carousel-41"


def attempt(client: FlaskClient, email: str, password: str) -> TestResponse:
    """Post the sign-in form."""
    token = csrf_from(client.get("/sign-in").get_data(as_text=True))
    return client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token})


def fresh(session: Session, user: User) -> User:
    """The user as stored now."""
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored is not None
    return stored


def post_form(client: FlaskClient, page: str, action: str, data: dict[str, Any]) -> TestResponse:
    """Post `data` to `action` with the CSRF token of `page`."""
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **data})


def role_form(client: FlaskClient, user: User, **data: Any) -> TestResponse:
    """Post the change-role form on the user's page, with what the page shows as seen."""
    page = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    seen = {
        "role-seen_role": user.role,
        "role-seen_authority_id": str(user.authority_id or ""),
        "role-authority": "",
    }
    return client.post(
        f"/admin/users/{user.id}/role",
        data={"role-csrf_token": csrf_from(page), **seen, **data},
    )


# ---- lockout ---------------------------------------------------------------------------------


def lock(session: Session, user: User) -> None:
    for _ in range(10):
        assert authenticate(session, user.email, WRONG) is None
    assert fresh(session, user).locked_at is not None


def test_tenth_wrong_password_in_a_row_locks_the_account(
    session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    for n in range(1, 10):
        authenticate(session, officer.email, WRONG)
        stored = fresh(session, officer)
        assert (stored.failed_sign_ins, stored.locked_at) == (n, None)
    authenticate(session, officer.email, WRONG)
    assert fresh(session, officer).locked_at is not None


def test_locked_account_refuses_correct_password(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    wrong_page = attempt(client, officer.email, WRONG).get_data(as_text=True)
    lock(session, officer)

    assert authenticate(session, officer.email, PASSWORD) is None
    response = attempt(client, officer.email, PASSWORD)
    # The same answer as a wrong password: the attacker learns nothing from it.
    assert response.status_code == 200
    assert FAILED_MESSAGE in response.get_data(as_text=True)
    assert "lock" not in response.get_data(as_text=True).lower()
    assert _without_csrf(response.get_data(as_text=True)) == _without_csrf(wrong_page)
    assert client.get("/premises").status_code == 302


def _without_csrf(page: str) -> str:
    token = csrf_from(page)
    return page.replace(token, "").split("<main", 1)[1]


def test_a_success_resets_the_count_of_wrong_passwords(
    session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    for _ in range(9):
        authenticate(session, officer.email, WRONG)
    assert authenticate(session, officer.email, PASSWORD) is not None
    assert fresh(session, officer).failed_sign_ins == 0
    for _ in range(9):
        authenticate(session, officer.email, WRONG)
    assert fresh(session, officer).locked_at is None


def test_lockout_threshold_is_configurable(app: Flask, session: Session, world: Any) -> None:
    app.config["ACCOUNT_LOCKOUT_FAILURES"] = 3
    officer = world["officer"]
    for _ in range(3):
        authenticate(session, officer.email, WRONG)
    assert fresh(session, officer).locked_at is not None


def test_concurrent_wrong_passwords_are_all_counted_and_lock_once(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    errors: list[BaseException] = []

    def guess() -> None:
        try:
            with app.app_context():
                authenticate(get_session(), officer.email, WRONG)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert fresh(session, officer).failed_sign_ins == 12
    locked = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "account_locked")
    )
    assert locked == 1


def test_admin_unlock_restores_sign_in(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer, admin = world["officer"], world["admin"]
    lock(session, officer)

    sign_in(client, admin)
    page = client.get(f"/admin/users/{officer.id}").get_data(as_text=True)
    assert "Locked" in page and "Unlock the account" in page
    response = post_form(
        client, f"/admin/users/{officer.id}", f"/admin/users/{officer.id}/unlock", {}
    )
    assert response.status_code == 302
    stored = fresh(session, officer)
    assert (stored.locked_at, stored.failed_sign_ins) == (None, 0)

    other = client.application.test_client()
    assert attempt(other, officer.email, PASSWORD).status_code == 302


def test_console_unlock_when_every_admin_is_locked_out(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    lock(session, admin)
    assert attempt(client, admin.email, PASSWORD).status_code == 200  # refused

    result = app.test_cli_runner().invoke(args=["users", "unlock", admin.email.upper()])
    assert result.exit_code == 0, result.output
    assert f"Unlocked {admin.email.upper()}" in result.output
    assert fresh(session, admin).locked_at is None
    assert attempt(client, admin.email, PASSWORD).status_code == 302
    event = session.scalars(select(AuditEvent).where(AuditEvent.event == "account_unlocked")).one()
    assert event.actor_id is None and '"via":"console"' in event.payload

    again = app.test_cli_runner().invoke(args=["users", "unlock", admin.email])
    assert again.exit_code == 0 and "was not locked" in again.output
    unknown = app.test_cli_runner().invoke(args=["users", "unlock", "nobody@example.org"])
    assert unknown.exit_code != 0 and "No user" in unknown.output


def test_the_user_list_shows_who_is_locked(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    lock(session, world["officer"])
    sign_in(client, world["admin"])
    page = client.get("/admin/users").get_data(as_text=True)
    row = page.split(f'id="user-{world["officer"].id}"', 1)[1].split("</tr>", 1)[0]
    assert "Locked" in row
    other_row = page.split(f'id="user-{world["supervisor"].id}"', 1)[1].split("</tr>", 1)[0]
    assert "Locked" not in other_row and "Active" in other_row


# ---- password policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "Password1234",
        "QWERTYUIOP12",
        "qwertyuiop12",
        "123456789012",
        "liverpool2026",
        "Welcome12345",
        "iloveyou1234",
        "1q2w3e4r5t6y",
        "Passw0rd1234",
    ],
)
def test_common_password_refused(session: Session, password: str) -> None:
    assert len(password) >= MIN_PASSWORD_LENGTH  # long enough: refused for being common
    with pytest.raises(ValidationFailed) as refused:
        create_user(session, "pc@police.example", "PC Sam Patel", "officer", password)
    assert "too common" in refused.value.errors["password"]
    assert session.scalar(select(func.count()).select_from(User)) == 0


def test_the_common_password_list_ships_with_the_package() -> None:
    listed = common_passwords()
    assert len(listed) >= 9000
    assert all(entry == entry.lower() and entry.strip() == entry for entry in listed)
    assert {"password1234", "qwertyuiop12", "123456"} <= listed


@pytest.mark.parametrize(
    ("password", "email", "name"),
    [
        ("sam.patel-is-great", "sam.patel@police.example", "PC Sam Patel"),
        ("my-surname-Patel-99", "pc123@police.example", "PC Sam Patel"),
        ("Kowalczyk#station7", "a.kowalczyk@police.example", "Anna K"),
        ("liverpool-licensing-99", "licensing@liverpool.example", "Chris Lee"),
    ],
)
def test_password_containing_the_users_name_or_email_refused(
    session: Session, password: str, email: str, name: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        create_user(session, email, name, "officer", password)
    assert refused.value.errors["password"] == (
        "The password must not contain your name or email address"
    )


def test_policy_checks_an_existing_user_too(world: dict[str, Any]) -> None:
    officer = world["officer"]  # "Officer 1", officer1@example.test
    with pytest.raises(ValidationFailed):
        check_password_strength("officer1-new-password", user=officer)
    check_password_strength(STRONG, user=officer)


def test_short_password_refused_and_a_strong_one_accepted(session: Session) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_password_strength("x7#kP2!q")
    assert refused.value.errors["password"] == "Use at least 12 characters"
    user = create_user(session, "pc@police.example", "PC Sam Patel", "officer", STRONG)
    assert authenticate(session, user.email, STRONG) is not None


# ---- who may reach the admin pages ------------------------------------------------------------

ADMIN_ONLY = [
    ("GET", "/admin/users/new"),
    ("POST", "/admin/users/new"),
    ("POST", "/admin/users/{id}/role"),
    ("POST", "/admin/users/{id}/disable"),
    ("POST", "/admin/users/{id}/enable"),
    ("POST", "/admin/users/{id}/unlock"),
]
READABLE = [("GET", "/admin/users"), ("GET", "/admin/users/{id}")]


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY + READABLE)
def test_officer_cannot_reach_admin_pages(
    client: FlaskClient, world: dict[str, Any], method: str, path: str
) -> None:
    target = world["supervisor"]
    sign_in(client, world["officer"])
    url = path.format(id=target.id)
    data = {"role-role": "officer", "role-seen_role": "supervisor"}
    response = client.get(url) if method == "GET" else post_form(client, "/", url, data)
    assert response.status_code == 403
    assert "Your role (officer) may not" in response.get_data(as_text=True)


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY + READABLE)
def test_council_user_learns_nothing_of_admin_pages(
    client: FlaskClient, world: dict[str, Any], method: str, path: str
) -> None:
    sign_in(client, world["council"])
    url = path.format(id=world["officer"].id)
    response = client.get(url) if method == "GET" else post_form(client, "/", url, {})
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
def test_supervisor_reads_account_pages_but_changes_nothing(
    client: FlaskClient, session: Session, world: dict[str, Any], method: str, path: str
) -> None:
    officer = world["officer"]
    sign_in(client, world["supervisor"])
    assert client.get("/admin/users").status_code == 200
    page = client.get(f"/admin/users/{officer.id}").get_data(as_text=True)
    assert "Account events" in page and "Disable the account" not in page
    url = path.format(id=officer.id)
    data = {"role-role": "admin", "role-seen_role": "officer"}
    response = client.get(url) if method == "GET" else post_form(client, "/", url, data)
    assert response.status_code == 403
    assert fresh(session, officer).role == "officer"


def test_the_navigation_links_to_users_for_admins_and_supervisors_only(
    app: Flask, world: dict[str, Any]
) -> None:
    for role, shown in [
        ("admin", True),
        ("supervisor", True),
        ("officer", False),
        ("council", False),
    ]:
        browser = app.test_client()
        sign_in(browser, world[role])
        page = browser.get("/premises").get_data(as_text=True)
        assert ('href="/admin/users"' in page) is shown, role


# ---- creating users ---------------------------------------------------------------------------


def create_form(**data: str) -> dict[str, str]:
    return {
        "name": "PC Robin Hughes",
        "email": "R.Hughes@police.example",
        "role": "officer",
        "authority": "",
        "password": STRONG,
        **data,
    }


def test_admin_creates_a_user_who_can_sign_in(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["admin"])
    response = post_form(client, "/admin/users/new", "/admin/users/new", create_form())
    assert response.status_code == 302
    created = session.scalar(select(User).where(User.email == "r.hughes@police.example"))
    assert created is not None
    assert (created.name, created.role, created.authority_id) == (
        "PC Robin Hughes",
        "officer",
        None,
    )
    assert response.headers["Location"] == f"/admin/users/{created.id}"
    assert "PC Robin Hughes can now sign in as officer." in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    assert (
        attempt(client.application.test_client(), "r.hughes@police.example", STRONG).status_code
        == 302
    )


def test_admin_create_refuses_a_common_password_on_the_field(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["admin"])
    response = post_form(
        client, "/admin/users/new", "/admin/users/new", create_form(password="Password1234")
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "<title>Error: Create a user" in page
    assert 'href="#password"' in page and "too common" in page
    assert session.scalar(select(User).where(User.email == "r.hughes@police.example")) is None


@pytest.mark.parametrize(
    ("role", "authority", "field", "message"),
    [
        ("council", "", "authority", "Choose the council this user works for"),
        ("officer", "LIV", "authority", "Only a council user belongs to a licensing authority"),
        ("council", "NOPE", "authority", "No licensing authority with code"),
    ],
)
def test_a_council_user_needs_a_council_and_no_one_else_has_one(
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    role: str,
    authority: str,
    field: str,
    message: str,
) -> None:
    sign_in(client, world["admin"])
    response = post_form(
        client,
        "/admin/users/new",
        "/admin/users/new",
        create_form(role=role, authority=authority),
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'href="#{field}"' in page and message in page
    assert session.scalar(select(User).where(User.email == "r.hughes@police.example")) is None


def test_admin_creates_a_council_user_of_one_authority(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["admin"])
    data = create_form(role="council", authority="SEF", email="lo@sefton.example")
    assert post_form(client, "/admin/users/new", "/admin/users/new", data).status_code == 302
    created = session.scalar(select(User).where(User.email == "lo@sefton.example"))
    assert created is not None and created.authority_id == world["sef"].id


def test_a_taken_email_is_refused(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sign_in(client, world["admin"])
    data = create_form(email=world["officer"].email.upper())
    response = post_form(client, "/admin/users/new", "/admin/users/new", data)
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


# ---- disabling and enabling -------------------------------------------------------------------


def test_admin_disables_a_user_who_is_signed_out_and_cannot_sign_in_then_enables(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    officers_browser = app.test_client()
    sign_in(officers_browser, officer)
    sign_in(client, world["admin"])

    page = f"/admin/users/{officer.id}"
    assert post_form(client, page, f"{page}/disable", {}).status_code == 302
    assert fresh(session, officer).active is False
    assert officers_browser.get("/premises").status_code == 302  # signed out at once
    refused = attempt(app.test_client(), officer.email, PASSWORD)
    assert refused.status_code == 200 and FAILED_MESSAGE in refused.get_data(as_text=True)

    assert post_form(client, page, f"{page}/enable", {}).status_code == 302
    assert fresh(session, officer).active is True
    assert attempt(app.test_client(), officer.email, PASSWORD).status_code == 302


def test_admin_cannot_disable_self(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    sign_in(client, admin)
    page = client.get(f"/admin/users/{admin.id}").get_data(as_text=True)
    assert "This is your own account" in page and "Disable the account" not in page
    response = post_form(client, "/", f"/admin/users/{admin.id}/disable", {})
    assert response.status_code == 422
    assert "You cannot disable your own account: ask another admin" in response.get_data(
        as_text=True
    )
    assert fresh(session, admin).active is True


# ---- changing roles ---------------------------------------------------------------------------


def test_admin_changes_a_role_and_the_user_has_it_at_their_next_page(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    officers_browser = app.test_client()
    sign_in(officers_browser, officer)
    assert officers_browser.get("/admin/users").status_code == 403
    sign_in(client, world["admin"])

    response = role_form(client, officer, **{"role-role": "supervisor"})
    assert response.status_code == 302
    assert fresh(session, officer).role == "supervisor"
    assert officers_browser.get("/admin/users").status_code == 200


def test_admin_moves_a_user_to_the_council_with_an_authority(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    officer = world["officer"]
    sign_in(client, world["admin"])
    refused = role_form(client, officer, **{"role-role": "council"})
    assert refused.status_code == 422
    assert "Choose the council this user works for" in refused.get_data(as_text=True)
    assert fresh(session, officer).role == "officer"

    moved = role_form(client, officer, **{"role-role": "council", "role-authority": "LIV"})
    assert moved.status_code == 302
    stored = fresh(session, officer)
    assert (stored.role, stored.authority_id) == ("council", world["liv"].id)

    back = role_form(client, stored, **{"role-role": "officer"})
    assert back.status_code == 302
    assert (fresh(session, officer).role, fresh(session, officer).authority_id) == ("officer", None)


def test_admin_cannot_demote_self(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    admin = world["admin"]
    sign_in(client, admin)
    response = role_form(client, admin, **{"role-role": "officer"})
    assert response.status_code == 422
    assert "You cannot change the role of your own account" in response.get_data(as_text=True)
    assert fresh(session, admin).role == "admin"


def test_a_stale_role_change_is_refused_not_applied_over_anothers(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], make_user: Any
) -> None:
    officer = world["officer"]
    second_admin = make_user("admin")
    sign_in(client, world["admin"])
    seen_page = client.get(f"/admin/users/{officer.id}").get_data(as_text=True)

    accounts.change_role(
        session,
        second_admin,
        officer,
        role="supervisor",
        authority_code=None,
        seen_role="officer",
        seen_authority_id=None,
    )

    response = client.post(
        f"/admin/users/{officer.id}/role",
        data={
            "role-csrf_token": csrf_from(seen_page),
            "role-seen_role": "officer",
            "role-seen_authority_id": "",
            "role-role": "admin",
            "role-authority": "",
        },
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Someone changed this user&#39;s role since you opened the page" in page
    assert 'name="role-seen_role" type="hidden" value="supervisor"' in page
    assert fresh(session, officer).role == "supervisor"


def test_the_last_active_admin_cannot_be_removed(
    session: Session, world: dict[str, Any], make_user: Any
) -> None:
    first, second = world["admin"], make_user("admin")
    accounts.set_active(session, first, second, False)  # one active admin left: first
    with pytest.raises(Refused, match="your own account"):
        accounts.set_active(session, first, first, False)
    session.rollback()
    with pytest.raises(Refused, match="your own account"):
        accounts.change_role(
            session,
            first,
            first,
            role="officer",
            authority_code=None,
            seen_role="admin",
            seen_authority_id=None,
        )
    session.rollback()
    # A disabled or demoted admin can no longer act, so cannot remove the last one either.
    with pytest.raises(Forbidden):
        accounts.change_role(
            session,
            second,
            first,
            role="officer",
            authority_code=None,
            seen_role="admin",
            seen_authority_id=None,
        )
    session.rollback()
    assert (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.active.is_(True))
        )
        == 1
    )


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    app: Flask, session: Session, world: dict[str, Any], make_user: Any
) -> None:
    first, second = world["admin"], make_user("admin")
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def demote(actor_id: int, target_id: int, name: str) -> None:
        with app.app_context():
            local = get_session()
            actor, target = local.get(User, actor_id), local.get(User, target_id)
            assert actor is not None and target is not None
            start.wait()
            try:
                accounts.change_role(
                    local,
                    actor,
                    target,
                    role="officer",
                    authority_code=None,
                    seen_role="admin",
                    seen_authority_id=None,
                )
                outcomes[name] = "changed"
            except Forbidden:
                outcomes[name] = "refused"

    threads = [
        threading.Thread(target=demote, args=(first.id, second.id, "first")),
        threading.Thread(target=demote, args=(second.id, first.id, "second")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["changed", "refused"]
    session.expire_all()
    assert (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.active.is_(True))
        )
        == 1
    )
