"""rates API clients, tokens and rate cache (issue 8)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Access tokens chronoforce issued (OAuth2 client credentials): only their SHA-256 digest.
    op.create_table(
        "api_token",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=80), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_api_token")),
    )
    op.create_index("ix_api_token_expires_at", "api_token", ["expires_at"])
    # Live rates per (route, weight band, day), shared by every process until expires_at.
    op.create_table(
        "rate_cache",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_cache")),
    )


def downgrade() -> None:
    op.drop_table("rate_cache")
    op.drop_index("ix_api_token_expires_at", table_name="api_token")
    op.drop_table("api_token")
