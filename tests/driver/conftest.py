"""The emulator and sandbox fixtures of test_deploy_with_emulator.py, for every driver test."""

from tests.driver.test_deploy_with_emulator import emulator, sandbox

__all__ = ["emulator", "sandbox"]
