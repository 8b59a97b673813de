"""Tables of the consent state, in the registry's database (created by the registry's Alembic migration 0005,
so one ``dmp init`` brings the whole database up to date; ``tests/consent`` checks these match it).

- ``dossier``: one row per patient of the registry's ``patient`` table: the patient's choices and the head of
  the access history chain (the last entry's sequence number and hash), so that deleting the newest entries
  is detected too.
- ``ps_authorization``: (patient, professional) pairs: VALIDE (authorised) or INTERDIT (blocked).
- ``professional_access``: who has already accessed the dossier (the patient is told of each first access).
- ``access_history``: the patient's history, each entry chained to the previous one by SHA-256.
- ``notification_outbox``: messages to send, written in the transaction of what they report.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

dossier = Table(
    "dossier",
    metadata,
    Column("patient_key", String(256), primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("consent_by", String(32), nullable=False),          # patient | representative | professional:<IdNat>
    Column("consent_channel", String(32), nullable=False),     # operator | portal | professional
    Column("creation_code_hash", String(128), nullable=True),  # scrypt hash of the creation code (portal)
    Column("minor", Boolean, nullable=False),
    Column("treating_doctor", String(64), nullable=True),      # IdNat_PS of the médecin traitant
    Column("allow_break_glass", Boolean, nullable=False),
    Column("allow_centre_15", Boolean, nullable=False),
    Column("masked_visible_in_emergency", Boolean, nullable=False),
    Column("feeding_opposed", Boolean, nullable=False),
    Column("email", String(256), nullable=True),
    Column("mobile", String(32), nullable=True),
    Column("trusted_email", String(256), nullable=True),       # trusted person, notified if the patient wishes
    Column("notify_trusted", Boolean, nullable=False),
    Column("notify_new_document", Boolean, nullable=False),
    Column("closed_at", String(32), nullable=True),
    Column("purge_after", String(32), nullable=True),          # closed_at + 10 years (R29)
    Column("history_seq", BigInteger, nullable=False),
    Column("history_head", String(64), nullable=False),
)

ps_authorization = Table(
    "ps_authorization",
    metadata,
    Column("patient_key", String(256), primary_key=True),
    Column("professional_id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),               # VALIDE | INTERDIT
    Column("declared_by", String(80), nullable=False),         # patient | operator | professional:<IdNat>
    Column("at", String(32), nullable=False),
)

professional_access = Table(
    "professional_access",
    metadata,
    Column("patient_key", String(256), primary_key=True),
    Column("professional_id", String(64), primary_key=True),
    Column("first_at", String(32), nullable=False),
)

access_history = Table(
    "access_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("patient_key", String(256), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", String(32), nullable=False),                  # ISO 8601 UTC, milliseconds
    Column("entry", Text, nullable=False),                     # canonical JSON of the entry
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("patient_key", "seq", name="uq_access_history_patient_seq"),
)

notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("patient_key", String(256), nullable=False),
    Column("notice", String(32), nullable=False),
    Column("channel", String(16), nullable=False),             # email | sms
    Column("recipient", String(256), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    Column("lease_until", String(32), nullable=True),
    Column("sent_at", String(32), nullable=True),
    Column("last_error", String(512), nullable=True),
    Index("ix_outbox_due", "sent_at", "next_attempt_at"),
)
