"""delta tracking with trackSearch (issue 21)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The last significant event a trackSearch answer showed for the parcel (pipeline/tracking/
    # delta.py): a different one next time means the parcel moved.
    op.add_column(
        "parcel", sa.Column("significant_code", sa.String(10), nullable=False, server_default="")
    )
    op.add_column("parcel", sa.Column("significant_at", sa.DateTime(timezone=True), nullable=True))
    # When a trackSearch answer last covered every live parcel of the shipment: the per-parcel
    # poller leaves it alone while that is recent.
    op.add_column("shipment", sa.Column("searched_at", sa.DateTime(timezone=True), nullable=True))
    # A tracking write's hold (tracking.salesforce_hold_s): the flusher sends it once this is
    # past or a full collection of its object is pending; NULL = not held.
    op.add_column("outbox", sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("hold_until")
    with op.batch_alter_table("shipment") as batch:
        batch.drop_column("searched_at")
    with op.batch_alter_table("parcel") as batch:
        batch.drop_column("significant_at")
        batch.drop_column("significant_code")
