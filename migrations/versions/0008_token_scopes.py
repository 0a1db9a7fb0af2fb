"""API tokens: scoped, expiring, revocable, last use recorded (security issue #7).

The columns (scopes, expires_at, revoked_at, last_used_at) have existed since 0001 but
nothing enforced them. This revision makes them binding for tokens already issued:

- a token with no scopes gets all three (read ingest workflow), as before this revision
  every token could do everything;
- a token with no expiry expires 90 days after this migration runs;
- expires_at becomes NOT NULL, so every token expires.

Downgrade only makes expires_at nullable again; the values it set stay.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_SCOPES = "read ingest workflow"
LIFETIME = timedelta(days=90)

api_tokens = sa.table(
    "api_tokens",
    sa.column("scopes", sa.String(200)),
    sa.column("expires_at", sa.DateTime()),
)


def upgrade() -> None:
    # Stored as naive UTC, as licensing.db.UTCDateTime does.
    expires = (datetime.now(UTC) + LIFETIME).replace(tzinfo=None)
    op.execute(
        api_tokens.update()
        .where(sa.func.trim(sa.func.coalesce(api_tokens.c.scopes, "")) == "")
        .values(scopes=ALL_SCOPES)
    )
    op.execute(
        api_tokens.update().where(api_tokens.c.expires_at.is_(None)).values(expires_at=expires)
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.alter_column("expires_at", existing_type=sa.DateTime(), nullable=True)
