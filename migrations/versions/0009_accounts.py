"""Accounts (security issue #7): lockout, password changes, OpenID Connect subjects and
single-use password reset links.

- users.failed_sign_ins counts consecutive failed sign-ins; users.locked_at is set when
  the count reaches the lockout threshold and cleared by an admin's unlock.
- users.password_changed_at is when the password was last set (sign-up, reset, admin).
- users.oidc_subject is the identity provider's `sub` claim of a user who signs in
  through OpenID Connect (unique where set).
- password_reset_tokens holds only the SHA-256 of each emailed link's token; a token is
  used at most once and expires.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("locked_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("password_changed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("oidc_subject", sa.String(255), nullable=True))
        batch_op.create_unique_constraint("uq_users_oidc_subject", ["oidc_subject"])

    op.create_table(
        "password_reset_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_password_reset_tokens_user_id_users"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_password_reset_tokens_token_hash"),
    )
    op.create_index(
        "ix_password_reset_tokens_user_id", "password_reset_tokens", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_password_reset_tokens_user_id", table_name="password_reset_tokens")
    op.drop_table("password_reset_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_users_oidc_subject", type_="unique")
        batch_op.drop_column("oidc_subject")
        batch_op.drop_column("password_changed_at")
        batch_op.drop_column("locked_at")
        batch_op.drop_column("failed_sign_ins")
