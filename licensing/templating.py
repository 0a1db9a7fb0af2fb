"""Template filters, globals and response headers shared by every page."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask, Response

from licensing.premises.workflow import OUTCOMES, STATE_LABELS
from licensing.timeutil import format_london

# GOV.UK tag colours for the four states: grey, yellow, orange, red, as a traffic light.
STATE_TAG_CLASSES = {
    "monitored": "govuk-tag--grey",
    "warned": "govuk-tag--yellow",
    "review": "govuk-tag--orange",
    "action": "govuk-tag--red",
}


def format_date(value: date | datetime | None) -> str:
    """'5 March 2027'; datetimes are shown as their London date."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_london(value, with_time=False)
    return value.strftime("%-d %b %Y")


def init_app(app: Flask) -> None:
    """Register filters, globals and the headers every response carries."""
    app.jinja_env.filters["london"] = format_london
    app.jinja_env.filters["date"] = format_date
    app.jinja_env.globals.update(
        STATE_LABELS=STATE_LABELS,
        STATE_TAG_CLASSES=STATE_TAG_CLASSES,
        OUTCOMES=OUTCOMES,
        service_name="Licensing enforcement",
    )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return response
