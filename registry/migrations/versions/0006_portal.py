"""The patients' space (docs/portal.md): accounts (login id, argon2 password hash, lockout), one-time codes,
sessions, and the patient's recorded wishes (trusted person, emergency contact, advance directives, organ
donation). The dossier's contact details and notification choices already exist (0005).

Revision ID: 0006_portal
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_portal"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_account",
        sa.Column("patient_key", sa.String(256), primary_key=True),
        sa.Column("login_id", sa.String(16), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("must_change_password", sa.Boolean, nullable=False),
        sa.Column("vitale_serial", sa.String(32), nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.String(32), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "portal_otp",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("patient_key", sa.String(256), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("used_at", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_portal_otp_patient", "portal_otp", ["patient_key", "purpose"])
    op.create_table(
        "portal_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("patient_key", sa.String(256), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("last_seen_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "portal_wishes",
        sa.Column("patient_key", sa.String(256), primary_key=True),
        sa.Column("trusted_person", sa.Text, nullable=True),
        sa.Column("emergency_contact", sa.Text, nullable=True),
        sa.Column("advance_directives", sa.Text, nullable=True),
        sa.Column("organ_donation", sa.String(16), nullable=True),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    for table in ("portal_wishes", "portal_session", "portal_otp", "portal_account"):
        op.drop_table(table)
