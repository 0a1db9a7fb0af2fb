"""Scale (issue #8): indexes for the hot queries, each justified by EXPLAIN.

Chosen from the plans kept in tests/test_query_plans.py (3,000 premises, 40,000
incidents, bulk-built and analysed) and checked on the large demo data set (10,000
premises, 1,000,000 incidents):

- premises (name, id): the register list is ordered by name. Without it both databases
  read every premises and sorted them (PostgreSQL: Seq Scan + Sort; SQLite: SCAN premises
  + USE TEMP B-TREE FOR ORDER BY) to show 25; with it the first page, and every "next"
  page (a keyset page from the last name and id shown), is an ordered walk that stops
  after 25 rows.
- premises (state, name, id): the same for the list filtered by state, the commonest
  filter (SQLite otherwise searched ix_premises_state_id and sorted every match).

Kept: ix_premises_state_id (state, id) still serves the API's keyset pages by id.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_premises_name_id", "premises", ["name", "id"]),
    ("ix_premises_state_name_id", "premises", ["state", "name", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
