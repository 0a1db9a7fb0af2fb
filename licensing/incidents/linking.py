"""Finding premises near a point without scanning every premises.

A uniform grid over latitude/longitude: each premises sits in one cell, and a point is
compared only with premises in the cells that can hold something within the radius.
For a whole import the grid is built once in memory; for one incident a bounding-box
query on the indexed coordinates does the same job in the database.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE_LAT = 111_320.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing the circle of `radius_m` around a point."""
    dlat = radius_m / METRES_PER_DEGREE_LAT
    cos_lat = max(math.cos(math.radians(min(abs(lat) + dlat, 89.9))), 1e-6)
    dlon = radius_m / (METRES_PER_DEGREE_LAT * cos_lat)
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


class PremisesGrid:
    """An in-memory grid index of premises positions."""

    def __init__(self, premises: Iterable[tuple[int, float, float]], radius_m: float) -> None:
        self.radius_m = radius_m
        # Cells about `radius_m` tall; as wide in degrees, which at UK latitudes is narrower
        # in metres, so a query looks as many cells across as the latitude needs.
        self.cell_deg = radius_m / METRES_PER_DEGREE_LAT
        self.cells: dict[tuple[int, int], list[tuple[int, float, float]]] = defaultdict(list)
        for premises_id, lat, lon in premises:
            self.cells[self._cell(lat, lon)].append((premises_id, lat, lon))

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self.cell_deg), math.floor(lon / self.cell_deg)

    def near(self, lat: float, lon: float) -> list[tuple[int, float]]:
        """(premises id, distance in metres) of every premises within the radius."""
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, self.radius_m)
        row_lo, col_lo = self._cell(min_lat, min_lon)
        row_hi, col_hi = self._cell(max_lat, max_lon)
        found: list[tuple[int, float]] = []
        cells = self.cells
        for row in range(row_lo, row_hi + 1):
            for col in range(col_lo, col_hi + 1):
                bucket = cells.get((row, col))
                if not bucket:
                    continue
                for premises_id, plat, plon in bucket:
                    d = distance_m(lat, lon, plat, plon)
                    if d <= self.radius_m:
                        found.append((premises_id, d))
        return found
