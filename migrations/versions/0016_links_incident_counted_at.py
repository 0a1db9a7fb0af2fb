"""Scale (issue #8): each incident link carries its incident's counted_at.

The premises page reads a premises' confirmed incidents newest first (a page of 50), per
week over the last year (the chart) and per window (the assessment). Ordered and bounded
by the incident's counted_at, each of the three joined every link of the premises to its
incident before it could sort or filter: with a 5,000-incident history, 5,000 look-ups
of the incidents' primary key a statement (PostgreSQL, large data set: 11, 7 and 6 ms of
the page's 35 ms of SQL). Incidents are never re-dated (counted_at is set when an
incident is recorded or imported, and there is no edit), so the link can carry it, and
the index (premises_id, status, incident_counted_at, incident_id) gives each statement
only the links it wants, already in order; the incident is then looked up for those
rows alone. It replaces (premises_id, status), which is its prefix.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "premises_incident_links", sa.Column("incident_counted_at", sa.DateTime(), nullable=True)
    )
    op.execute(
        "UPDATE premises_incident_links SET incident_counted_at = (SELECT incidents.counted_at"
        " FROM incidents WHERE incidents.id = premises_incident_links.incident_id)"
    )
    with op.batch_alter_table("premises_incident_links") as batch_op:
        batch_op.alter_column("incident_counted_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_index("ix_premises_incident_links_premises_id_status")
        batch_op.create_index(
            "ix_premises_incident_links_premises_status_counted",
            ["premises_id", "status", "incident_counted_at", "incident_id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("premises_incident_links") as batch_op:
        batch_op.drop_index("ix_premises_incident_links_premises_status_counted")
        batch_op.create_index(
            "ix_premises_incident_links_premises_id_status", ["premises_id", "status"]
        )
        batch_op.drop_column("incident_counted_at")
