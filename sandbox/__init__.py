"""The sandbox: openclaw-phala tried and rehearsed without an account (`./scripts/sandbox`).

Everything the product needs to run itself locally, moved out of the tests:
- `engine.py`: the real Pulumi engine offline in a world of its own (PulumiWorkspace);
- `processes.py`: processes started in groups of their own and stopped by id;
- `services.py`: the local Phala Cloud and Cloudflare APIs (emulators/) as processes;
- `openclaw.py`, `fork_keys.py`, `gateway.py`: the real OpenClaw gateway from npm, run
  offline behind a network guard, from what the program gave a tenant;
- `folder.py`: the one private, memory-backed folder of a sandbox;
- `plugins.py`: the real provider plugins where installed, else the stand-ins;
- `vendor_guard.py`, `stack_files.py`: nothing reaches a vendor, and an operator's stack
  file is taken only with a secrets provider that works offline;
- `demo.py`, `lifecycle.py`: `up`, `status`, `down` of the demo stack;
- `rehearse.py`: an operator's stack and change, end to end; `report.py` what is printed.
The tests import the same modules (tests/support re-exports them).
"""
