"""Consent state beside the registry: dossiers, authorizations, access history, notification outbox, and who
filed each submission (docs/consent.md).

Every patient already in the registry gets a dossier with the defaults of a new one (emergency access allowed,
masked documents hidden in emergencies, no médecin traitant, nobody authorised): professionals then need an
authorisation, as the DMP requires (R7), and an empty history chain.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_GENESIS = "0" * 64
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "submission_origin",
        sa.Column("submission_set_id", sa.String(64), primary_key=True),
        sa.Column("submitter", sa.String(64), nullable=False),
        sa.Column("structure_id", sa.String(64), nullable=True),
        sa.Column("by_patient", sa.Boolean, nullable=False),
    )
    op.create_table(
        "dossier",
        sa.Column("patient_key", sa.String(256), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("consent_by", sa.String(32), nullable=False),
        sa.Column("consent_channel", sa.String(32), nullable=False),
        sa.Column("creation_code_hash", sa.String(128), nullable=True),
        sa.Column("minor", sa.Boolean, nullable=False),
        sa.Column("treating_doctor", sa.String(64), nullable=True),
        sa.Column("allow_break_glass", sa.Boolean, nullable=False),
        sa.Column("allow_centre_15", sa.Boolean, nullable=False),
        sa.Column("masked_visible_in_emergency", sa.Boolean, nullable=False),
        sa.Column("feeding_opposed", sa.Boolean, nullable=False),
        sa.Column("email", sa.String(256), nullable=True),
        sa.Column("mobile", sa.String(32), nullable=True),
        sa.Column("trusted_email", sa.String(256), nullable=True),
        sa.Column("notify_trusted", sa.Boolean, nullable=False),
        sa.Column("notify_new_document", sa.Boolean, nullable=False),
        sa.Column("closed_at", sa.String(32), nullable=True),
        sa.Column("purge_after", sa.String(32), nullable=True),
        sa.Column("history_seq", sa.BigInteger, nullable=False),
        sa.Column("history_head", sa.String(64), nullable=False),
    )
    op.create_table(
        "ps_authorization",
        sa.Column("patient_key", sa.String(256), primary_key=True),
        sa.Column("professional_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("declared_by", sa.String(80), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
    )
    op.create_table(
        "professional_access",
        sa.Column("patient_key", sa.String(256), primary_key=True),
        sa.Column("professional_id", sa.String(64), primary_key=True),
        sa.Column("first_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "access_history",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("patient_key", sa.String(256), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("patient_key", "seq", name="uq_access_history_patient_seq"),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("patient_key", sa.String(256), nullable=False),
        sa.Column("notice", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(256), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(32), nullable=False),
        sa.Column("lease_until", sa.String(32), nullable=True),
        sa.Column("sent_at", sa.String(32), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
    )
    op.create_index("ix_outbox_due", "notification_outbox", ["sent_at", "next_attempt_at"])
    op.execute(sa.text(
        "INSERT INTO dossier (patient_key, created_at, consent_by, consent_channel, minor, allow_break_glass, "
        "allow_centre_15, masked_visible_in_emergency, feeding_opposed, notify_trusted, notify_new_document, "
        "closed_at, history_seq, history_head) "
        "SELECT patient_key, created_at, 'patient', 'migration', false, true, true, false, false, false, true, "
        "closed_at, 0, :genesis FROM patient").bindparams(genesis=_GENESIS))


def downgrade() -> None:
    for table in ("notification_outbox", "access_history", "professional_access", "ps_authorization", "dossier",
                  "submission_origin"):
        op.drop_table(table)
