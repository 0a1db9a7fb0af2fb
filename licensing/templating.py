"""Template filters, globals and response headers shared by every page."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Flask, Response
from govuk_frontend_wtf.wtforms_widgets import GovDateInput, GovRadioInput
from wtforms import Form

from licensing.premises.workflow import OUTCOMES, STATE_LABELS
from licensing.timeutil import format_london

# GOV.UK tag colours for the four states: grey, yellow, orange, red, as a traffic light.
STATE_TAG_CLASSES = {
    "monitored": "govuk-tag--grey",
    "warned": "govuk-tag--yellow",
    "review": "govuk-tag--orange",
    "action": "govuk-tag--red",
}


# How history shows the fields of a premises record.
FIELD_LABELS = {
    "name": "Premises name",
    "address": "Address",
    "postcode": "Postcode",
    "uprn": "UPRN",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "licence_holder": "Licence holder",
    "dps": "Designated premises supervisor",
    "licensable_activities": "Licensable activities",
    "opening_hours": "Opening hours",
    "licence_status": "Licence status",
    "case_officer_id": "Case officer",
}


def error_target_id(field: Any) -> str:
    """The id of the element an error summary link for `field` should focus.

    GOV.UK date inputs put the field id on a wrapping div; the first box (`-day`) is the
    element to focus. Radios' first input carries the field id itself.
    """
    if isinstance(field.widget, GovDateInput):
        return f"{field.name}-day"
    if isinstance(field.widget, GovRadioInput):
        return str(field.name)
    return str(field.id)


def place_errors(
    form: Any, error: Any, fallback: str, aliases: dict[str, str] | None = None
) -> None:
    """Put a service's field errors (a ValidationFailed) on the form's fields, so the
    layout's error summary links to them; a field named in `aliases` goes on the form
    field it maps to, and a message that fits no field goes on `fallback`."""
    placed = False
    for name, message in error.errors.items():
        field = getattr(form, name, None) or getattr(form, (aliases or {}).get(name, ""), None)
        if field is not None:
            field.errors = [*field.errors, message]
            placed = True
    if not placed:
        target = getattr(form, fallback)
        target.errors = [*target.errors, error.message]


def form_error_list(form: Form) -> list[dict[str, str]]:
    """The error summary's items for a form: each field's first error, linked to it."""
    items = []
    for field in form:
        if not field.errors:
            continue
        if field.type in ("HiddenField", "CSRFTokenField"):
            # Nothing to focus, and "This field is required" would mean nothing here.
            items.append(
                {
                    "text": "The form was out of date: reload the page and try again",
                    "href": "#main-content",
                }
            )
            continue
        message = field.errors[0] if isinstance(field.errors, list | tuple) else field.errors
        items.append({"text": str(message), "href": f"#{error_target_id(field)}"})
    return items


DEADLINE_LABELS = {
    "representations_close": "Representations close",
    "hearing_start_by": "Hearing must start by",
    "determination_by": "Determination due by",
    "appeal_by": "Appeal period ends",
    "interim_steps_by": "Interim steps to be considered by",
    "summary_determination_by": "Summary review determination due by",
    "suspension_ends": "Suspension ends",
    "compliance_visit_due": "Compliance visit due",
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
        FIELD_LABELS=FIELD_LABELS,
        DEADLINE_LABELS=DEADLINE_LABELS,
        form_error_list=form_error_list,
        service_name="Licensing enforcement",
    )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return response
