"""Security issue #7, hostile input through every form: arbitrary text in every field of
every form the app renders, for each role that sees it. Never a 500.

The forms are not listed by hand: every page the app serves (each GET route with path
values naming real objects, as each role) is fetched, and every `<form method="post">`
on it is collected with its fields. A form added later is fuzzed without anyone having
to remember it. Hypothesis then posts arbitrary text (and, for hidden fields and choices,
sometimes the page's own value, so the request gets past the first check) with a valid
CSRF token.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import test_authorisation_matrix as matrix_module
from tests.test_authorisation_matrix import OWN, Browser, Variant, World, _path_values

# The authorisation matrix test's module fixtures: one database with objects in two
# authorities, and a signed-in client per role.
matrix_database = matrix_module.matrix_database
matrix_app = matrix_module.matrix_app
world = matrix_module.world
browsers = matrix_module.browsers

# The order matters a little: the admin's forms (which may disable or re-role users) go
# last so the other roles' sessions are fuzzed first.
ROLES = ("officer", "supervisor", "council", "admin")
# Forms that end or replace the session they are sent in.
SESSION_ENDING_ACTIONS = {"/sign-out", "/sign-in"}
# What a refused or accepted form may answer; anything else (a 500 above all) fails.
HANDLED = {200, 302, 303, 400, 403, 404, 409, 413, 422, 429}
TEXT = st.text(max_size=200)


@dataclass(frozen=True)
class Field:
    """One named control of a form, with the value the page gave it."""

    name: str
    kind: str  # text, hidden, choice, file, checkbox
    value: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Form:
    """A POST form found on a page."""

    page: str
    action: str
    fields: tuple[Field, ...]
    multipart: bool


class FormParser(HTMLParser):
    """Collects every POST form of a page with its named controls."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self._current: dict[str, Any] | None = None
        self._select: dict[str, Any] | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._current = {
                "action": a.get("action") or self.page,
                "fields": [],
                "multipart": "multipart" in a.get("enctype", ""),
            }
        elif self._current is None or "name" not in a:
            return
        elif tag == "input":
            kind = a.get("type", "text").lower()
            if kind in {"submit", "button", "image", "reset"}:
                return
            kind = {"radio": "choice"}.get(kind, kind)
            kind = kind if kind in {"hidden", "file", "checkbox", "choice"} else "text"
            existing = [f for f in self._current["fields"] if f.name == a["name"]]
            if kind == "choice" and existing:  # another radio button of the same group
                field = existing[0]
                self._current["fields"].remove(field)
                self._current["fields"].append(
                    Field(field.name, "choice", field.value, (*field.options, a.get("value", "")))
                )
                return
            options = (a.get("value", ""),) if kind == "choice" else ()
            self._current["fields"].append(Field(a["name"], kind, a.get("value", ""), options))
        elif tag == "select":
            self._select = {"name": a["name"], "options": []}
        elif tag == "textarea":
            self._textarea = a["name"]

    def handle_starttag_option(self, attrs: dict[str, str]) -> None:
        """An <option> inside the current <select>."""
        if self._select is not None:
            self._select["options"].append(attrs.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._current is not None:
            fields = tuple(f for f in self._current["fields"] if f.name != "csrf_token")
            action = urlsplit(self._current["action"]).path or self.page
            self.forms.append(Form(self.page, action, fields, self._current["multipart"]))
            self._current = None
        elif tag == "select" and self._select is not None and self._current is not None:
            options = tuple(self._select["options"])
            value = options[0] if options else ""
            self._current["fields"].append(Field(self._select["name"], "choice", value, options))
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._current is not None:
            self._current["fields"].append(Field(self._textarea, "text", ""))
            self._textarea = None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def _parse(page: str, html: str) -> list[Form]:
    parser = FormParser(page)
    # HTMLParser has no per-tag hook for <option>; route it through handle_starttag.
    original = parser.handle_starttag

    def starttag(tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "option":
            parser.handle_starttag_option({k: v or "" for k, v in attrs})
        else:
            original(tag, attrs)

    parser.handle_starttag = starttag  # type: ignore[method-assign]
    parser.feed(html)
    return parser.forms


def _pages(app: Flask, world: World, role: str) -> list[str]:
    """Every page path the app serves (GET routes outside the API), with path values
    naming real objects of the council user's own authority."""
    adapter = app.url_map.bind("localhost")
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()) or rule.endpoint == "static":
            continue
        if rule.rule.startswith("/api/") or rule.endpoint.startswith(("health.", "oidc.")):
            continue
        values = _path_values(app, world, rule, OWN, role, Variant(""))
        pages.append(adapter.build(rule.endpoint, values))
    return sorted(set(pages))


def _discover(app: Flask, world: World, browser: Browser, role: str) -> list[Form]:
    forms: dict[tuple[str, tuple[str, ...]], Form] = {}
    for page in _pages(app, world, role):
        response = browser.client.get(page)
        if response.status_code != 200 or "text/html" not in response.content_type:
            continue
        for form in _parse(page, response.get_data(as_text=True)):
            if form.action in SESSION_ENDING_ACTIONS:
                continue
            forms.setdefault((form.action, tuple(f.name for f in form.fields)), form)
    return list(forms.values())


def _strategy(field: Field) -> st.SearchStrategy[Any]:
    if field.kind == "file":
        return st.binary(max_size=2_000)
    if field.kind == "checkbox":
        return st.sampled_from(["", field.value or "y"]) | TEXT
    if field.kind in {"hidden", "choice"}:
        own = [v for v in (field.value, *field.options) if v]
        return (st.sampled_from(own) if own else st.just("")) | TEXT
    return TEXT


def _post(browser: Browser, form: Form, values: dict[str, Any]) -> int:
    data: dict[str, Any] = {"csrf_token": browser.token}
    for field in form.fields:
        value = values[field.name]
        if field.kind == "file":
            if value:
                data[field.name] = (io.BytesIO(value), "upload.bin")
        else:
            data[field.name] = value
    response = browser.client.post(
        form.action,
        data=data,
        content_type="multipart/form-data" if form.multipart else None,
    )
    return response.status_code


FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,  # the same examples every run: CI is not flaky
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.mark.parametrize("role", ROLES)
def test_arbitrary_text_in_every_field_of_every_form_is_never_a_server_error(
    matrix_app: Flask, world: World, browsers: dict[str, Browser], role: str
) -> None:
    browser = browsers[role]
    forms = _discover(matrix_app, world, browser, role)
    # The discovery must find the forms, or the test would pass by fuzzing nothing.
    minimum = {"officer": 10, "supervisor": 10, "council": 2, "admin": 3}[role]
    assert len(forms) >= minimum, [f.action for f in forms]

    failures: list[str] = []
    for form in forms:
        try:
            _fuzzer(browser, form)()
        except AssertionError as error:
            failures.append(f"{form.action} (on {form.page}): {error}")
    assert failures == []


def _fuzzer(browser: Browser, form: Form) -> Any:
    """A Hypothesis test of one form: arbitrary values, a handled answer."""

    @FUZZ
    @given(values=st.fixed_dictionaries({f.name: _strategy(f) for f in form.fields}))
    def fuzz(values: dict[str, Any]) -> None:
        status = _post(browser, form, values)
        if status == 302 and browser.client.get("/").status_code == 302:
            browser.renew()  # a form that ended the session (e.g. a role change)
        assert status in HANDLED, f"{status} from {form.action}"

    return fuzz


def test_the_form_parser_finds_fields_of_every_kind() -> None:
    html = """
    <form method="post" action="/x?y=1" enctype="multipart/form-data">
      <input type="hidden" name="csrf_token" value="t">
      <input type="hidden" name="version" value="3">
      <input name="name"><textarea name="notes"></textarea>
      <select name="category"><option value="a">A</option><option value="b">B</option></select>
      <input type="radio" name="outcome" value="yes"><input type="radio" name="outcome" value="no">
      <input type="checkbox" name="agree" value="y"><input type="file" name="upload">
      <button type="submit">Save</button>
    </form>
    <form method="get" action="/search"><input name="q"></form>
    """
    (form,) = _parse("/page", html)
    assert form.action == "/x" and form.multipart
    kinds = {f.name: (f.kind, f.value, f.options) for f in form.fields}
    assert kinds == {
        "version": ("hidden", "3", ()),
        "name": ("text", "", ()),
        "notes": ("text", "", ()),
        "category": ("choice", "a", ("a", "b")),
        "outcome": ("choice", "yes", ("yes", "no")),
        "agree": ("checkbox", "y", ()),
        "upload": ("file", "", ()),
    }
