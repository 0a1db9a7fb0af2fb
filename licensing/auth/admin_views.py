"""The admin's user pages: list, create, disable and enable, change role, unlock, and
each account's events. Supervisors may read the list and the account pages (to see
account events); only admins change anything, and the services check that again."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from licensing.auth import accounts
from licensing.auth.forms import NO_AUTHORITY, ChangeRoleForm, CreateUserForm
from licensing.auth.matrix import Action, allowed, permits
from licensing.auth.models import User
from licensing.choices import SelectChoice, select_choices
from licensing.db import get_session
from licensing.errors import Conflict, NotFound, Refused, ValidationFailed
from licensing.premises.models import LicensingAuthority
from licensing.templating import place_errors

admin_users_bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


def _signed_in() -> User:
    return cast(User, current_user)


def _authority_choices() -> list[SelectChoice]:
    authorities = get_session().scalars(
        select(LicensingAuthority).order_by(LicensingAuthority.name)
    )
    return select_choices([NO_AUTHORITY, *((a.code, a.name) for a in authorities)])


def _role_form(user: User) -> ChangeRoleForm:
    """The change-role form showing the user's role and council as they are now."""
    form = ChangeRoleForm(
        prefix="role",
        formdata=None,
        data={
            "role": user.role,
            "authority": user.authority.code if user.authority else "",
            "seen_role": user.role,
            "seen_authority_id": str(user.authority_id or ""),
        },
    )
    form.authority.choices = _authority_choices()
    return form


def _render_account(
    user: User, role_form: ChangeRoleForm, problem: str | None = None, status: int = 200
) -> ResponseReturnValue:
    session = get_session()
    return render_template(
        "admin/user.html",
        user=user,
        role_form=role_form,
        error_form=role_form,
        problem=problem,
        last_signed_in_at=accounts.last_signed_in_at(session, user),
        history=accounts.account_history(session, user.id),
        may_change=allowed(_signed_in(), Action.MANAGE_USERS) and _signed_in().id != user.id,
    ), status


@admin_users_bp.get("")
@permits(Action.VIEW_USERS)
def list_users() -> ResponseReturnValue:
    """Every account with its role, council, status and last sign-in."""
    return render_template("admin/users.html", accounts=accounts.list_accounts(get_session()))


@admin_users_bp.route("/new", methods=["GET", "POST"])
@permits(Action.MANAGE_USERS)
def create() -> ResponseReturnValue:
    """Create an account with a first password."""
    session = get_session()
    form = CreateUserForm()
    form.authority.choices = _authority_choices()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.create_account(
                session,
                _signed_in(),
                email=form.email.data or "",
                name=form.name.data or "",
                role=form.role.data or "",
                password=form.password.data or "",
                authority_code=form.authority.data,
            )
        except ValidationFailed as error:
            session.rollback()
            place_errors(form, error, "email")
            status = 422
        except NotFound as error:  # an authority code that does not exist
            session.rollback()
            form.authority.errors = [error.message]
            status = 422
        except Refused as error:  # the email is taken
            session.rollback()
            form.email.errors = [error.message]
            status = 422
        else:
            flash(f"{user.name} can now sign in as {user.role}.", "success")
            return redirect(url_for("admin_users.show", user_id=user.id))
    elif request.method == "POST":
        status = 422
    return render_template("admin/user_new.html", form=form), status


@admin_users_bp.get("/<int:user_id>")
@permits(Action.VIEW_USERS)
def show(user_id: int) -> ResponseReturnValue:
    """One account: its details, the admin's actions, and its events."""
    user = accounts.get_account(get_session(), user_id)
    return _render_account(user, _role_form(user))


@admin_users_bp.post("/<int:user_id>/role")
@permits(Action.MANAGE_USERS)
def change_role(user_id: int) -> ResponseReturnValue:
    """Give the user another role (and council)."""
    session = get_session()
    user = accounts.get_account(session, user_id)
    form = ChangeRoleForm(prefix="role")
    form.authority.choices = _authority_choices()
    if not form.validate_on_submit():
        return _render_account(user, form, status=422)
    seen_authority = form.seen_authority_id.data or ""
    try:
        changed = accounts.change_role(
            session,
            _signed_in(),
            user,
            role=form.role.data or "",
            authority_code=form.authority.data,
            seen_role=form.seen_role.data or "",
            seen_authority_id=int(seen_authority) if seen_authority.isdigit() else None,
        )
    except ValidationFailed as error:
        session.rollback()
        place_errors(form, error, "role")
        return _render_account(user, form, status=422)
    except (Conflict, Refused, NotFound) as error:
        session.rollback()
        # Show the role as it is now, so that the next attempt starts from it.
        return _render_account(user, _role_form(user), error.message, error.status)
    flash(
        f"{user.name} is now {user.role}." if changed else "The role is unchanged.",
        "success" if changed else "info",
    )
    return redirect(url_for("admin_users.show", user_id=user.id))


def _set_active(user_id: int, active: bool) -> ResponseReturnValue:
    session = get_session()
    user = accounts.get_account(session, user_id)
    try:
        changed = accounts.set_active(session, _signed_in(), user, active)
    except Refused as error:
        session.rollback()
        return _render_account(user, _role_form(user), error.message, error.status)
    if changed:
        flash(
            f"{user.name} can sign in again."
            if active
            else f"{user.name} can no longer sign in or use API tokens.",
            "success",
        )
    return redirect(url_for("admin_users.show", user_id=user.id))


@admin_users_bp.post("/<int:user_id>/disable")
@permits(Action.MANAGE_USERS)
def disable(user_id: int) -> ResponseReturnValue:
    """Stop the user signing in (never your own account, nor the last active admin)."""
    return _set_active(user_id, False)


@admin_users_bp.post("/<int:user_id>/enable")
@permits(Action.MANAGE_USERS)
def enable(user_id: int) -> ResponseReturnValue:
    """Let a disabled user sign in again."""
    return _set_active(user_id, True)


@admin_users_bp.post("/<int:user_id>/unlock")
@permits(Action.MANAGE_USERS)
def unlock(user_id: int) -> ResponseReturnValue:
    """Unlock an account locked by failed sign-ins."""
    session = get_session()
    user = accounts.get_account(session, user_id)
    if accounts.unlock(session, _signed_in(), user):
        flash(f"{user.name}'s account is unlocked.", "success")
    return redirect(url_for("admin_users.show", user_id=user.id))
