"""Probes for load balancers and orchestrators: liveness (`/healthz`) and readiness
(`/readyz`). Both are public and say only which check failed, never why in detail: no
paths, no database names, no error text."""

from __future__ import annotations

import logging
from functools import cache

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from licensing.db import get_session

health_bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@health_bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """200 when the database answers, 503 when it does not. Public: says nothing else."""
    try:
        get_session().execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="unavailable", database="down"), 503
    return jsonify(status="ok", database="up")


@cache
def schema_heads() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code (read once)."""
    from alembic.script import ScriptDirectory

    from licensing.cli import alembic_config

    # The URL is not used to read the scripts; any placeholder does.
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _database_ready() -> tuple[bool, bool]:
    """(the database answers, its schema is at the migrations' head)."""
    session = get_session()
    try:
        applied = set(session.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:
        session.rollback()
        try:  # no alembic_version table is a schema problem, not a database outage
            session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            session.rollback()
            return False, False
        return True, False
    return True, applied == set(schema_heads())


def _evidence_writable() -> bool:
    """Whether a file can be written (and removed) in the evidence store now."""
    from licensing.evidence import store

    if not store.writable():
        log.warning("readiness: the evidence store is not writable (%s)", store.describe())
        return False
    return True


@health_bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when this node can serve: the database answers, its schema is at the head of
    the migrations this code ships, and the evidence store (its directory, or its bucket)
    takes a file; else 503, naming each check as ok or failed (a node mid-deploy waits
    for `licensing db upgrade`; one without its shared mount or its bucket is kept out of
    the pool)."""
    database, schema = _database_ready()
    checks = {
        "database": database,
        "schema": schema,
        "evidence_store": _evidence_writable(),
    }
    ready = all(checks.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {name: "ok" if passed else "failed" for name, passed in checks.items()},
    }
    return jsonify(body), 200 if ready else 503
