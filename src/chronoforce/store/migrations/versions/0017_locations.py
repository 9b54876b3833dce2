"""shipper locations (issue 23)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The shipper location a shipment leaves from (a `locations.sites` key) and why.
    op.add_column(
        "shipment", sa.Column("location", sa.String(40), nullable=False, server_default="")
    )
    op.add_column(
        "shipment", sa.Column("location_reason", sa.Text(), nullable=False, server_default="")
    )


def downgrade() -> None:
    with op.batch_alter_table("shipment") as batch:
        batch.drop_column("location_reason")
        batch.drop_column("location")
