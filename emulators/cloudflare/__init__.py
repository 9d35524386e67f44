"""The Cloudflare API emulator (see `emulators.cloudflare.emulator` and FIDELITY.md)."""

from emulators.cloudflare.emulator import DEFAULT_API_TOKEN, CloudflareEmulator

__all__ = ["DEFAULT_API_TOKEN", "CloudflareEmulator"]
