"""Organisations, users, memberships, workspaces, roles, invitations, API keys and the audit
log: the one place that resolves and enforces tenancy."""
