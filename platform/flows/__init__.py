"""Flows (a workspace's flow documents), their immutable content-addressed versions, and
runs (one durable engine workflow each, pinned to the version it ran)."""
