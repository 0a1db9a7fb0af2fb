"""The map and the charts: figures rebuilt from the audit trail and the incidents, always
within what the user may see (the council rule), and the pages that show them.

Everything is made through the real services: premises through the register service,
state changes through `move()` with the clock moved into past months, incidents through
the generic import (`record_evidence`) and `record_incident`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from config import load_config
from licensing.incidents.services import record_incident
from licensing.premises.models import Premises
from licensing.reports import services
from licensing.reports.charts import category_chart, state_chart
from licensing.timeutil import LONDON
from tests.conftest import move, record_evidence, sign_in

LAT, LON = 53.40440, -2.97870


def mid_month(month: services.Month) -> datetime:
    """Noon on the 15th of a month, London time."""
    return datetime(month.year, month.month, 15, 12, tzinfo=LONDON)


@dataclass
class Scene:
    """Premises with known histories; `timelines` gives each one's state at the end of
    each of the 12 months (index 11: now), None before it existed."""

    users: dict[str, Any]
    premises: dict[str, Premises]
    timelines: dict[str, list[str | None]]
    months: list[services.Month]


def _timeline(spans: list[tuple[int, int, str]]) -> list[str | None]:
    states: list[str | None] = [None] * 12
    for first, last, state in spans:
        for index in range(first, last + 1):
            states[index] = state
    return states


@pytest.fixture
def scene(session: Session, make_authority, make_user, make_premises) -> Scene:  # type: ignore[no-untyped-def]
    """LIV: A (monitored m2, warned m5, review m8, located), B (monitored m4, warned m6,
    stood down m7, located), D (created and warned now, located), F (review now, no
    location). SEF: C (monitored m1, summary review m3, action m9, located)."""
    liv = make_authority("LIV", "Liverpool City Council")
    sef = make_authority("SEF", "Sefton Council")
    officer = make_user("officer")
    supervisor = make_user("supervisor")
    users = {
        "officer": officer,
        "supervisor": supervisor,
        "admin": make_user("admin"),
        "council": make_user("council", "LIV"),
        "other_council": make_user("council", "SEF"),
    }
    months = services.last_months()
    m = [mid_month(month) for month in months]

    def at(index: int, days: int = 0) -> time_machine.travel:
        return time_machine.travel(m[index] + timedelta(days=days), tick=False)

    def summary_review(premises: Premises) -> None:
        move(
            session,
            premises,
            supervisor,
            "apply_for_summary_review",
            received_at=datetime.now(UTC).isoformat(),
            certificate_reference=f"CERT-{premises.id}",
        )

    with at(1):
        c = make_premises(
            sef, officer, evidence=False, name="Cedar Club", latitude=53.49, longitude=-3.01
        )
    with at(2):
        a = make_premises(
            liv, officer, evidence=False, name="Anchor Inn", latitude=LAT, longitude=LON
        )
    with at(3):
        summary_review(c)
    with at(4):
        b = make_premises(
            liv, officer, evidence=False, name="Bell Bar", latitude=53.41, longitude=-2.98
        )
    with at(5):
        record_evidence(session, a, "Public order")
        move(session, a, officer, "warn")
    with at(6):
        record_evidence(session, b, "Drugs")
        move(session, b, officer, "warn")
    with at(7):
        move(session, b, officer, "stand_down")
    with at(8):
        summary_review(a)
    with at(9):
        move(
            session,
            c,
            supervisor,
            "record_determination",
            outcome="revoke",
            decision_date=datetime.now(LONDON).date().isoformat(),
        )
    # Now: D is created and warned, F goes straight to a summary review.
    d = make_premises(
        liv, officer, evidence=False, name="Dolphin Tavern", latitude=53.42, longitude=-2.99
    )
    record_evidence(session, d, "Drugs")
    move(session, d, officer, "warn")
    f = make_premises(liv, officer, evidence=False, name="Fox Lounge")
    summary_review(f)

    # Incidents for the 90-day circles and the category chart.
    record_evidence(session, a, "Criminal damage and arson")  # yesterday
    with time_machine.travel(datetime.now(UTC) - timedelta(days=100), tick=False):
        record_evidence(session, a, "Criminal damage and arson")  # 101 days ago
    record_incident(
        session,
        officer,
        {
            "source": "manual",
            "category": "Robbery",
            "occurred_at": (months[0].start - timedelta(days=20)).isoformat(),
        },
        premises=a,
    )  # before the 12 months: never counted
    record_incident(
        session,
        officer,
        {
            "source": "manual",
            "category": "Violence and sexual offences",
            "occurred_at": m[4].isoformat(),
        },
        premises=c,
    )
    suggested = record_incident(
        session,
        officer,
        {
            "source": "manual",
            "category": "Shoplifting",
            "occurred_at": (datetime.now(UTC) - timedelta(days=5)).isoformat(),
            "latitude": LAT + 0.0001,
            "longitude": LON,
        },
    )  # a suggested link to A: not confirmed, so never counted
    assert suggested.created

    timelines = {
        "A": _timeline([(2, 4, "monitored"), (5, 7, "warned"), (8, 11, "review")]),
        "B": _timeline([(4, 5, "monitored"), (6, 6, "warned"), (7, 11, "monitored")]),
        "C": _timeline([(1, 2, "monitored"), (3, 8, "review"), (9, 11, "action")]),
        "D": _timeline([(11, 11, "warned")]),
        "F": _timeline([(11, 11, "review")]),
    }
    return Scene(
        users=users,
        premises={"A": a, "B": b, "C": c, "D": d, "F": f},
        timelines=timelines,
        months=months,
    )


def expected_series(scene: Scene, names: str) -> dict[str, list[int]]:
    """Per state, how many of the named premises were in it at each month's end."""
    series = {state: [0] * 12 for state in ("monitored", "warned", "review", "action")}
    for name in names:
        for index, state in enumerate(scene.timelines[name]):
            if state:
                series[state][index] += 1
    return series


LIV_CATEGORIES = [("Criminal damage and arson", 2), ("Drugs", 2), ("Public order", 1)]
SEF_CATEGORIES = [("Violence and sexual offences", 1)]
COUNCIL_LIV_CATEGORIES = [("Criminal damage and arson", 2), ("Public order", 1)]


# ---- services --------------------------------------------------------------------------


def test_last_months_are_twelve_london_months_ending_now() -> None:
    now = datetime(2026, 4, 10, 9, tzinfo=UTC)
    months = services.last_months(now)
    assert [m.key for m in months][:2] == ["2025-05", "2025-06"]
    assert months[-1].key == "2026-04" and months[-1].current and months[-1].at == now
    # March 2026 ends at midnight London time on 1 April: 23:00 UTC, in BST.
    march = months[-2]
    assert march.at == datetime(2026, 3, 31, 23, tzinfo=UTC)
    assert march.label == "Mar 2026"


def test_states_over_time_rebuilds_each_month_end_from_the_audit_trail(
    session: Session, scene: Scene
) -> None:
    officer = scene.users["officer"]
    liv = services.states_over_time(session, officer, "LIV")
    assert [m.key for m in liv.months] == [m.key for m in scene.months]
    assert liv.series == expected_series(scene, "ABDF")
    assert services.states_over_time(session, officer, "SEF").series == expected_series(scene, "C")
    assert services.states_over_time(session, officer).series == expected_series(scene, "ABCDF")
    # The month in progress is the register as it stands.
    now = {state: values[-1] for state, values in liv.series.items()}
    assert now == {"monitored": 1, "warned": 1, "review": 2, "action": 0}


def test_states_over_time_for_a_council_user_counts_only_premises_they_may_see(
    session: Session, scene: Scene
) -> None:
    council = scene.users["council"]
    # A and F are LIV's premises under review; B (monitored) and D (warned) are not
    # counted, in any month, and SEF's cannot be asked for.
    assert services.states_over_time(session, council, "LIV").series == expected_series(scene, "AF")
    assert services.states_over_time(session, council, "SEF").series == expected_series(scene, "")


def test_incidents_by_category_counts_confirmed_links_in_the_last_twelve_months(
    session: Session, scene: Scene
) -> None:
    officer = scene.users["officer"]
    assert services.incidents_by_category(session, officer, "LIV").counts == LIV_CATEGORIES
    assert services.incidents_by_category(session, officer, "SEF").counts == SEF_CATEGORIES
    everything = services.incidents_by_category(session, officer)
    assert dict(everything.counts) == dict(LIV_CATEGORIES + SEF_CATEGORIES)
    assert everything.total == 6
    council = scene.users["council"]
    assert services.incidents_by_category(session, council, "LIV").counts == COUNCIL_LIV_CATEGORIES


def test_map_premises_count_confirmed_incidents_in_the_last_90_days(
    session: Session, scene: Scene
) -> None:
    items = services.map_premises(session, scene.users["officer"], services.MapFilter())
    counts = {item.name: item.incidents for item in items}
    # A: yesterday's only (101 days ago is out; the suggested shoplifting is unconfirmed).
    assert counts == {
        "Anchor Inn": 1,
        "Bell Bar": 0,
        "Cedar Club": 0,
        "Dolphin Tavern": 1,
        "Fox Lounge": 0,
    }
    assert services.density_radius(0) == 0
    assert 0 < services.density_radius(1) < services.density_radius(5) <= 40
    assert services.density_radius(10_000) == 40


def test_chart_geometry_carries_the_figures_it_draws(session: Session, scene: Scene) -> None:
    data = services.states_over_time(session, scene.users["officer"], "LIV")
    chart = state_chart(data)
    drawn = {(bar.key, bar.series): bar.count for bar in chart.bars}
    figures = {
        (month.key, state): values[i]
        for state, values in data.series.items()
        for i, month in enumerate(data.months)
        if values[i]
    }
    assert drawn == figures
    assert all(bar.y >= 0 and bar.y + bar.height <= chart.plot_height + 0.01 for bar in chart.bars)
    categories = category_chart(services.incidents_by_category(session, scene.users["officer"]))
    assert [(bar.key, bar.count) for bar in categories.bars] == categories.data.counts
    widest = max(categories.bars, key=lambda bar: bar.count)
    assert all(bar.width <= widest.width for bar in categories.bars)


# ---- pages -----------------------------------------------------------------------------


class _Cells(HTMLParser):
    """Collects data-key/data-series figures: table cells' text and SVG rects' counts."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, dict[tuple[str, str], int]] = {}
        self.rects: dict[tuple[str, str], int] = {}
        self._table: str | None = None
        self._cell: tuple[str, str] | None = None
        self._text = ""
        self.style_attributes = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "style" in attributes:
            self.style_attributes += 1
        if tag == "table" and attributes.get("id"):
            self._table = attributes["id"]
            self.cells[self._table or ""] = {}
        key, series = attributes.get("data-key"), attributes.get("data-series")
        if key is None or series is None:
            return
        if tag == "rect":
            self.rects[(key, series)] = int(attributes["data-count"] or 0)
        elif tag == "td":
            self._cell, self._text = (key, series), ""

    def handle_data(self, data: str) -> None:
        if self._cell:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell and self._table:
            self.cells[self._table][self._cell] = int(self._text.strip())
            self._cell = None
        if tag == "table":
            self._table = None


def parse(html: str) -> _Cells:
    """The figures in a page."""
    parser = _Cells()
    parser.feed(html)
    return parser


def table_series(cells: dict[tuple[str, str], int], scene: Scene) -> dict[str, list[int]]:
    """The state table's cells as {state: [12 figures]}."""
    return {
        state: [cells[(month.key, state)] for month in scene.months]
        for state in ("monitored", "warned", "review", "action")
    }


def map_data(html: str) -> dict[str, Any]:
    """The JSON the map script reads."""
    match = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S)
    assert match, "no map data in the page"
    return json.loads(match.group(1))


def table_names(html: str) -> set[str]:
    """The premises named in the map's table."""
    table = html.split('id="map-table"', 1)[1].split("</table>", 1)[0]
    return set(re.findall(r'<a class="govuk-link" href="/premises/\d+">([^<]+)</a>', table))


def test_charts_page_tables_match_the_data(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.users["officer"])
    response = client.get("/reports", query_string={"authority": "LIV"})
    assert response.status_code == 200
    page = parse(response.get_data(as_text=True))
    assert table_series(page.cells["state-table"], scene) == expected_series(scene, "ABDF")
    assert [
        (key, count) for (key, _series), count in page.cells["category-table"].items()
    ] == LIV_CATEGORIES
    # Every bar drawn is a non-zero cell of its table, and every non-zero cell is drawn.
    tables = {**page.cells["state-table"], **page.cells["category-table"]}
    assert page.rects == {key: n for key, n in tables.items() if n and key[1] != "all"}
    assert page.style_attributes == 0


def test_charts_page_for_all_authorities_and_an_unknown_one(
    client: FlaskClient, scene: Scene
) -> None:
    sign_in(client, scene.users["supervisor"])
    for query in ({}, {"authority": "NOPE"}):
        page = parse(client.get("/reports", query_string=query).get_data(as_text=True))
        assert table_series(page.cells["state-table"], scene) == expected_series(scene, "ABCDF")


def test_charts_page_holds_a_council_user_to_their_own_visible_premises(
    client: FlaskClient, scene: Scene
) -> None:
    sign_in(client, scene.users["council"])
    response = client.get("/reports", query_string={"authority": "SEF"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = parse(html)
    assert table_series(page.cells["state-table"], scene) == expected_series(scene, "AF")
    assert [
        (key, count) for (key, _series), count in page.cells["category-table"].items()
    ] == COUNCIL_LIV_CATEGORIES
    assert 'id="authority"' not in html and "Sefton" not in html


def test_map_data_holds_exactly_the_premises_each_user_may_see(scene: Scene, app: Any) -> None:
    ids = {name: premises.id for name, premises in scene.premises.items()}
    expectations = [
        ("officer", {"A", "B", "C", "D"}, {"A", "B", "C", "D", "F"}),
        ("admin", {"A", "B", "C", "D"}, {"A", "B", "C", "D", "F"}),
        ("council", {"A"}, {"A", "F"}),
        ("other_council", {"C"}, {"C"}),
    ]
    names = {name: premises.name for name, premises in scene.premises.items()}
    for role, on_map, in_table in expectations:
        user_client = app.test_client()
        sign_in(user_client, scene.users[role])
        response = user_client.get("/map")
        assert response.status_code == 200, role
        html = response.get_data(as_text=True)
        data = map_data(html)
        assert {item["id"] for item in data["premises"]} == {ids[n] for n in on_map}, role
        assert table_names(html) == {names[n] for n in in_table}, role
        for hidden in set(names) - in_table:
            assert names[hidden] not in html, (role, hidden)


def test_map_data_describes_each_marker(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.users["officer"])
    html = client.get("/map").get_data(as_text=True)
    data = map_data(html)
    assert data["tiles"]["url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in data["tiles"]["attribution"]
    anchor = next(item for item in data["premises"] if item["name"] == "Anchor Inn")
    assert anchor == {
        "id": scene.premises["A"].id,
        "name": "Anchor Inn",
        "state": "review",
        "lat": LAT,
        "lon": LON,
        "incidents": 1,
        "radius": services.density_radius(1),
        "url": f"/premises/{scene.premises['A'].id}",
    }
    # The table is the accessible equivalent: the same count, and F listed as unplaced.
    row = html.split(f'data-premises-id="{scene.premises["A"].id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="govuk-table__cell govuk-table__cell--numeric">1</td>' in row
    fox = html.split(f'data-premises-id="{scene.premises["F"].id}"', 1)[1].split("</tr>", 1)[0]
    assert "No location" in fox
    assert 'role="region" aria-label="Map of the premises' in html


def test_map_page_has_no_inline_script_or_style(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.users["officer"])
    html = client.get("/map").get_data(as_text=True)
    main = html.split('id="main-content"', 1)[1]
    assert parse(main).style_attributes == 0
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", main, re.S):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
        assert "src=" not in attributes or not body.strip()
    assert "/assets/leaflet/leaflet.js" in main and "/assets/app/map.js" in main
    assert "/assets/leaflet/leaflet.css" in html and "/assets/app/map.css" in html


MAP_FILTERS = [
    ({"state": "review"}, {"A"}),
    ({"state": "monitored"}, {"B"}),
    ({"authority": "SEF"}, {"C"}),
    ({"authority": "sef", "state": "action"}, {"C"}),
    ({"authority": "LIV", "state": "action"}, set()),
    ({"state": "nonsense", "authority": "NOPE"}, {"A", "B", "C", "D"}),
]


def test_map_filters(client: FlaskClient, scene: Scene) -> None:
    # One scene for every case: building it (with its evidence bundles) is the slow part.
    sign_in(client, scene.users["supervisor"])
    for query, on_map in MAP_FILTERS:
        html = client.get("/map", query_string=query).get_data(as_text=True)
        expected = {scene.premises[name].id for name in on_map}
        assert {item["id"] for item in map_data(html)["premises"]} == expected, query
        in_table = table_names(html)
        assert {n for n, p in scene.premises.items() if p.name in in_table} >= on_map, query


def test_map_filters_cannot_widen_a_council_users_view(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.users["council"])
    for query in ({"authority": "SEF"}, {"state": "monitored"}, {"state": "action"}):
        html = client.get("/map", query_string=query).get_data(as_text=True)
        ids = {item["id"] for item in map_data(html)["premises"]}
        assert ids <= {scene.premises["A"].id}, query
        assert "Cedar Club" not in html and "Bell Bar" not in html


def test_map_and_charts_need_a_sign_in(client: FlaskClient) -> None:
    for path in ("/map", "/reports"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/sign-in" in response.headers["Location"]


def test_map_tiles_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_config("development")
    assert defaults["MAP_TILE_URL"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    monkeypatch.setenv("MAP_TILE_URL", "https://tiles.example.police.uk/{z}/{x}/{y}.png")
    monkeypatch.setenv("MAP_TILE_ATTRIBUTION", "Force mapping")
    settings = load_config("development")
    assert settings["MAP_TILE_URL"] == "https://tiles.example.police.uk/{z}/{x}/{y}.png"
    assert settings["MAP_TILE_ATTRIBUTION"] == "Force mapping"
