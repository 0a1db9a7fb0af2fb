"""Scale (issue #8): the incident list filtered by category.

On the large demo data set (1,000,000 incidents) the list's count with a category filter
read every incident (PostgreSQL: a parallel Seq Scan; SQLite: SCAN incidents), about
0.7 s a page. With incidents (category, counted_at, id) the count reads only that
category's index entries, and the newest-first page (ordered by counted_at, id) is an
ordered walk of the same index that stops after a page, keyset "next" pages included.
A data.police.uk file's rows share one month, so an import appends to this index at a
handful of points rather than all over it (its cost is measured in benchmarks/RESULTS.md).

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_incidents_category_counted_at_id", "incidents", ["category", "counted_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_category_counted_at_id", table_name="incidents")
