"""Stopping a test's server or client by the id of its process group: see sandbox/processes.py
(product code, shared with the sandbox)."""

from sandbox.processes import group_alive, stop_group

__all__ = ["group_alive", "stop_group"]
