"""Tables of the patients' space, in the registry's database (created by the registry's Alembic migration
``0006_portal``, so one ``dmp init`` brings the whole database up to date; docs/portal.md).

- ``portal_account``: one row per activated space: the login id, the password's argon2 hash, the failure
  counter and lock of the login (docs/portal.md "Login").
- ``portal_otp``: one-time codes sent by e-mail or SMS (scrypt hash only), each valid 10 minutes, used once.
- ``portal_session``: browser sessions, known by the SHA-256 of their cookie value; their CSRF token.
- ``portal_wishes``: what the patient records beside the documents (R34): trusted person, emergency contact,
  advance directives, organ-donation position.
- ``portal_rate``: the sign-in forms' attempts per client address in its current window (docs/portal.md
  "Security"); a row is deleted once its window is over.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

portal_account = Table(
    "portal_account",
    metadata,
    Column("patient_key", String(256), primary_key=True),
    Column("login_id", String(16), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("must_change_password", Boolean, nullable=False),   # the initial password (S003: changed at first login)
    Column("vitale_serial", String(32), nullable=False),       # given at activation (R38)
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", String(32), nullable=True),
    Column("created_at", String(32), nullable=False),
)

portal_otp = Table(
    "portal_otp",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patient_key", String(256), nullable=False),
    Column("purpose", String(16), nullable=False),             # login | reset
    Column("code_hash", String(128), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32), nullable=True),
    Column("attempts", Integer, nullable=False),
    Index("ix_portal_otp_patient", "patient_key", "purpose"),
)

portal_session = Table(
    "portal_session",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("patient_key", String(256), nullable=False),
    Column("stage", String(16), nullable=False),               # otp (password checked) | reset | in
    Column("csrf", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("last_seen_at", String(32), nullable=False),
)

portal_wishes = Table(
    "portal_wishes",
    metadata,
    Column("patient_key", String(256), primary_key=True),
    Column("trusted_person", Text, nullable=True),
    Column("emergency_contact", Text, nullable=True),
    Column("advance_directives", Text, nullable=True),
    Column("organ_donation", String(16), nullable=True),       # accepts | refuses | undecided
    Column("updated_at", String(32), nullable=False),
)

portal_rate = Table(
    "portal_rate",
    metadata,
    Column("client", String(64), primary_key=True),             # the client's address as the node sees it
    Column("window_start", String(32), nullable=False),         # first attempt of the window (ISO 8601 UTC)
    Column("hits", Integer, nullable=False),
    Index("ix_portal_rate_window_start", "window_start"),
)
