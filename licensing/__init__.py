"""Licensing enforcement workflow engine: the Flask application factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFProtect
from govuk_frontend_wtf.main import WTFormsHelpers
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, PrefixLoader
from werkzeug.routing import IntegerConverter, Map

from config import INSTANCE_DIR, load_config
from licensing import db, observability, security
from licensing.evidence import store as evidence_store

csrf = CSRFProtect()
ROOT = Path(__file__).resolve().parent.parent


class RowIdConverter(IntegerConverter):
    """`<int:…>` in every route: a whole number that fits a database integer column
    (PostgreSQL's `integer`, the narrowest the ids use)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        kwargs.setdefault("max", db.MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app from $LICENSING_ENV settings, with `overrides` applied last."""
    settings = load_config(str((overrides or {}).get("ENV_NAME") or "") or None)
    settings.update(overrides or {})

    app = Flask(
        __name__,
        static_folder="static",
        static_url_path="/assets",  # GOV.UK Frontend's CSS expects its fonts under /assets
        template_folder=str(ROOT / "templates"),
        instance_path=str(INSTANCE_DIR),
    )
    app.config.update(settings)
    os.makedirs(app.instance_path, exist_ok=True)
    # Before any route is added: an id in a path too large for the database's integer
    # columns is a page that does not exist (404), not a driver error (500).
    app.url_map.converters["int"] = RowIdConverter

    app.jinja_loader = ChoiceLoader(
        [
            FileSystemLoader(str(ROOT / "templates")),
            PrefixLoader(
                {
                    "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
                    "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
                }
            ),
        ]
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.jinja_env.add_extension("jinja2.ext.do")
    WTFormsHelpers(app)
    csrf.init_app(app)
    db.init_app(app)
    evidence_store.init_app(app)
    # First of the request hooks: the request id is set before any other hook logs.
    observability.init_app(app)
    security.init_app(app)

    from licensing import templating
    from licensing.actionplans.views import actionplans_bp
    from licensing.api import api_bp
    from licensing.assessment.views import assessment_bp
    from licensing.auth import throttling
    from licensing.auth import views as auth_views
    from licensing.auth.admin_views import admin_users_bp
    from licensing.auth.matrix import refuse_undeclared_endpoints
    from licensing.auth.oidc import init_app as init_oidc
    from licensing.auth.oidc import oidc_bp
    from licensing.auth.reset import reset_bp
    from licensing.dashboard.views import dashboard_bp
    from licensing.deadlines.views import deadlines_bp
    from licensing.evidence.attachment_views import attachments_bp
    from licensing.evidence.views import evidence_bp
    from licensing.health import health_bp
    from licensing.incidents.views import incidents_bp
    from licensing.letters.views import letters_bp
    from licensing.notifications.views import notifications_bp
    from licensing.premises.views import premises_bp
    from licensing.reports.views import reports_bp
    from licensing.visits.views import visits_bp

    templating.init_app(app)
    auth_views.init_app(app)
    # Deny by default: an endpoint that declares no action of the authorisation matrix
    # is refused (after the sign-in check registered just above, which runs first).
    app.before_request(refuse_undeclared_endpoints)
    app.register_blueprint(auth_views.auth_bp)
    throttling.init_app(app)  # wraps the sign-in view registered just above
    app.register_blueprint(reset_bp)
    init_oidc(app)
    app.register_blueprint(oidc_bp)
    app.register_blueprint(admin_users_bp)
    app.register_blueprint(premises_bp)
    app.register_blueprint(incidents_bp)
    app.register_blueprint(deadlines_bp)
    app.register_blueprint(visits_bp)
    app.register_blueprint(actionplans_bp)
    app.register_blueprint(evidence_bp)
    app.register_blueprint(attachments_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(letters_bp)
    app.register_blueprint(assessment_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(observability.metrics_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # the API takes bearer tokens only, never the session cookie

    from licensing.cli import register_commands

    register_commands(app)
    _register_error_pages(app)
    return app


def _register_error_pages(app: Flask) -> None:
    from licensing.errors import DomainError

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError) -> tuple[str, int]:
        return render_template(
            "error.html", status=error.status, message=error.message
        ), error.status

    for status, title in (
        (403, "You do not have access"),
        (404, "Page not found"),
        (413, "File too large"),
        (405, "Not allowed"),
    ):

        def handler(error: Exception, status: int = status, title: str = title) -> Any:
            if request.path.startswith("/api/"):
                code = title.lower().replace(" ", "_")
                response = jsonify(error=code, message=title)
            else:
                response = app.make_response(
                    render_template("error.html", status=status, message=title)
                )
            allowed = getattr(error, "valid_methods", None)
            if status == 405 and allowed:  # HTTP requires a 405 to say what is allowed
                response.headers["Allow"] = ", ".join(sorted(allowed))
            response.status_code = status
            return response

        app.register_error_handler(status, handler)
