"""Offline plan: a stack's desired state, evaluated without cloud credentials or Pulumi CLI."""
