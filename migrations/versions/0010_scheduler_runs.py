"""Running on several machines (issue #8): when each scheduler job last succeeded.

- scheduler_runs holds one row per scheduler job id with the time (UTC) it last finished
  without error; `/metrics` reports the seconds since, whichever node is scraped.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_runs",
        sa.Column("job", sa.String(40), nullable=False),
        sa.Column("last_success_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job", name="pk_scheduler_runs"),
    )


def downgrade() -> None:
    op.drop_table("scheduler_runs")
