"""Helpers shared by the test packages (real Prometheus, Pulumi mocks)."""
