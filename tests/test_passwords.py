"""Passwords are stored as argon2id hashes, never as text, and checked against them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.auth.models import User
from licensing.auth.services import authenticate
from tests.conftest import PASSWORD


def test_passwords_are_stored_as_argon2id_hashes(session: Session, world: dict[str, Any]) -> None:
    stored = session.scalars(select(User.password_hash)).all()
    assert stored and all(value.startswith("$argon2id$") for value in stored)
    assert all(PASSWORD not in value for value in stored)
    # Each hash has its own salt: the same password never gives the same hash.
    assert len(set(stored)) == len(stored)


def test_the_hash_checks_the_password(session: Session, world: dict[str, Any]) -> None:
    officer = world["officer"]
    assert authenticate(session, officer.email, PASSWORD) is not None
    assert authenticate(session, officer.email, PASSWORD + "x") is None
