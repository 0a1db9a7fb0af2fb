"""Distances and the grid index: known distances, and the grid agrees with a full scan."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licensing.incidents.linking import PremisesGrid, bounding_box, distance_m


def test_known_distance_one_thousandth_of_a_degree_of_latitude():
    # One degree of latitude is about 111.2 km on the mean-radius sphere.
    assert distance_m(53.4, -2.98, 53.401, -2.98) == pytest.approx(111.19, abs=0.05)


def test_known_distance_along_a_parallel_shrinks_with_latitude():
    at_equator = distance_m(0.0, 0.0, 0.0, 0.001)
    at_liverpool = distance_m(53.4, 0.0, 53.4, 0.001)
    assert at_equator == pytest.approx(111.19, abs=0.05)
    assert at_liverpool == pytest.approx(111.19 * math.cos(math.radians(53.4)), abs=0.05)


def test_grid_finds_premises_inside_the_radius_and_not_outside():
    # Premises 1 is 40 m north of the point, premises 2 is 60 m north, 3 is 45 m east.
    lat, lon = 53.40, -2.98
    north = 1 / 111_195  # degrees of latitude per metre
    east = 1 / (111_195 * math.cos(math.radians(lat)))
    grid = PremisesGrid(
        [(1, lat + 40 * north, lon), (2, lat + 60 * north, lon), (3, lat, lon + 45 * east)], 50
    )
    found = dict(grid.near(lat, lon))
    assert set(found) == {1, 3}
    assert found[1] == pytest.approx(40, abs=0.5)
    assert found[3] == pytest.approx(45, abs=0.5)


def test_bounding_box_contains_the_circle():
    min_lat, max_lat, min_lon, max_lon = bounding_box(53.4, -2.98, 50)
    assert distance_m(53.4, -2.98, max_lat, -2.98) >= 50 - 0.5
    assert distance_m(53.4, -2.98, 53.4, max_lon) >= 50 - 0.5
    assert min_lat < 53.4 < max_lat and min_lon < -2.98 < max_lon


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    radius=st.floats(10, 500),
    centre_lat=st.floats(-70, 70),
    centre_lon=st.floats(-179, 179),
)
def test_grid_agrees_with_a_full_scan(seed, radius, centre_lat, centre_lon):
    rng = random.Random(seed)
    spread = radius * 4 / 111_195
    premises = [
        (i, centre_lat + rng.uniform(-spread, spread), centre_lon + rng.uniform(-spread, spread))
        for i in range(60)
    ]
    grid = PremisesGrid(premises, radius)
    for _ in range(5):
        lat = centre_lat + rng.uniform(-spread, spread)
        lon = centre_lon + rng.uniform(-spread, spread)
        expected = {
            pid for pid, plat, plon in premises if distance_m(lat, lon, plat, plon) <= radius
        }
        assert {pid for pid, _ in grid.near(lat, lon)} == expected
