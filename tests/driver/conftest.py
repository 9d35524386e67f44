"""Fixtures for the driver tests: a hostile, fast emulator and a sandbox around it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.phala import Behaviour, PhalaCloudEmulator, Timings
from tests.driver.driver_sandbox import DECOY_SSH_KEY, Sandbox

# Fast, but every phase is there: a create boots, an update stops and restarts the CVM
# (running with an operation in progress, stopping, stopped, starting), a delete takes time.
FAST_HOSTILE_TIMINGS = Timings(
    boot=0.1, update_grace=0.05, stop=0.05, stopped=0.05, restart_boot=0.05, delete=0.1
)


def start_emulator(behaviour: Behaviour | None = None) -> PhalaCloudEmulator:
    return PhalaCloudEmulator(
        behaviour=behaviour or Behaviour(timings=FAST_HOSTILE_TIMINGS)
    ).start()


def stop_in_background(emulator: PhalaCloudEmulator) -> None:
    # stop() waits out serve_forever's 0.5 s poll; nothing else uses this emulator, so let
    # it finish in the background instead of adding half a second to every test.
    threading.Thread(target=emulator.stop, name="emulator-stop", daemon=True).start()


@pytest.fixture
def emulator() -> Iterator[PhalaCloudEmulator]:
    running = start_emulator()
    yield running
    stop_in_background(running)


@pytest.fixture
def sandbox(emulator: PhalaCloudEmulator, tmp_path: Path) -> Sandbox:
    return make_sandbox(emulator, tmp_path)


def make_sandbox(emulator: PhalaCloudEmulator, tmp_path: Path) -> Sandbox:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    # The CLI picks up ~/.ssh/*.pub on its own; the driver must hide this from it.
    (home / ".ssh" / "id_ed25519.pub").write_text(DECOY_SSH_KEY + "\n")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Sandbox(emulator, home, tmpdir, scratch)
