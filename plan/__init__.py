"""Offline plan: a stack's desired state, evaluated without cloud credentials or Pulumi CLI."""

# Starts every line the plan prints on stderr (the plan at a ref already starts its own).
PREFIX = "plan: "


class PlanError(Exception):
    """An expected failure: one message, printed after PREFIX, exit status 1."""
