"""The patients' web space at ``/portal/`` (docs/portal.md): activation with the creation code, login with a
password and a one-time code sent by e-mail or SMS, the documents (open, download, add, hide from
professionals), the access history, blocks, médecin traitant, emergency access, wishes, notifications, a copy
of everything, closure. Server-rendered French pages, no script.

- :func:`portal_app` builds the Starlette app the node mounts; :class:`PortalDeps` is what it needs.
- The pure rules (login ids, passwords, one-time codes, lockout, rate limit) are in ``portal._rules``.
"""

from portal._app import PortalDeps, portal_app

__all__ = ["PortalDeps", "portal_app"]
