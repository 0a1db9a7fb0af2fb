"""Scale (issue #8): PostgreSQL statistics on visits (status, visit_date) together.

The dashboard's "visits today" list asks for open visits (proposed or scheduled) on one
day, ten at a time in (visit_date, id) order. PostgreSQL estimates the two conditions as
independent: on a day with many visits completed (on the large demo data set, 40,000
completed on the day it was loaded) it expected 10,000 open ones, walked the visits'
primary key for the first ten, and read all 53,640 visits to find none (16 ms of the
dashboard's SQL). Extended statistics (the most common (status, visit_date) pairs and
how one depends on the other) let it see that few open visits fall on that day, and it
reads ix_visits_status_visit_date instead (0.6 ms). SQLite has no such statistics and
already searches that index; nothing changes there.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS st_visits_status_visit_date (mcv, dependencies)"
            " ON status, visit_date FROM visits"
        )
        # Filled now rather than at autovacuum's next analysis of visits, which waits
        # for a tenth of the table to change.
        op.execute("ANALYZE visits")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_visits_status_visit_date")
