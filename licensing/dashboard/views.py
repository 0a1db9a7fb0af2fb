"""The dashboard at `/`."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask.typing import ResponseReturnValue

from licensing.auth.models import Role
from licensing.auth.permissions import roles_required

dashboard_bp = Blueprint("dashboard", __name__)


@dashboard_bp.get("/")
@roles_required(Role.OFFICER, Role.SUPERVISOR, Role.COUNCIL, Role.ADMIN)
def home() -> ResponseReturnValue:
    """Home (placeholder until the dashboard lands): the register."""
    return redirect(url_for("premises.list_premises"))
