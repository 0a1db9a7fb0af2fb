"""Indexes for the dashboard's counts (each one chosen from EXPLAIN on 10,000 premises
and 1,000,000 incidents; see benchmarks/dashboard.py).

- incidents (created_at): "incidents added in the last 7 days" was a scan of every
  incident. Rows are stamped when inserted, so the import only appends at its edge.
- premises_incident_links (status, created_at, incident_id): how many of those have a
  suggested link, counted from the index alone, instead of probing the links of each
  recent incident (tens of thousands of look-ups after a monthly import).
- premises (case_officer_id, state): a user's caseload by state; SQLite otherwise
  scanned the whole register along the state index.
- visits (officer_id, status, visit_date): a user's open visits, soonest first, without
  reading every visit they have ever completed.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_incidents_created_at", "incidents", ["created_at"]),
    (
        "ix_premises_incident_links_status_created_at",
        "premises_incident_links",
        ["status", "created_at", "incident_id"],
    ),
    ("ix_premises_case_officer_id_state", "premises", ["case_officer_id", "state"]),
    ("ix_visits_officer_id_status_visit_date", "visits", ["officer_id", "status", "visit_date"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
