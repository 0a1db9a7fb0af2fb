"""Scale (issue #8): interventions (warnings, review outcomes) found by event.

The premises page and the assessment overview look for a premises' interventions with
`event IN ('warn', 'record_determination')`. Only (premises_id, seq) served it, so the
page read every event of the premises: on the large demo data set, a premises with a
5,000-incident history has 5,007 events, of which one is a warning (PostgreSQL: Bitmap
Heap Scan, 5,006 rows removed by the filter, 1.6 ms; SQLite: SEARCH by premises_id,
0.4 ms). The overview, over every premises, read the whole table (PostgreSQL: Seq Scan
of 164,000 events for 6,300, 66 ms). With (event, premises_id) each reads only the
interventions: an index search per event name. Audit events are appended, never
updated, so the index costs each new event one more entry.

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_event_premises_id", "audit_events", ["event", "premises_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_event_premises_id", table_name="audit_events")
