"""Local imitations of the vendor APIs the program and its driver talk to.

- `emulators.phala`: the Phala Cloud API, as the pinned `phala` CLI and the deploy driver
  use it;
- `emulators.cloudflare`: the Cloudflare v4 API calls the cloudflare provider makes for
  R2 buckets and account tokens.

They are product code, not only test support: the test suite runs the real CLI and the real
engine against them, and `scripts/sandbox` lets an operator try or rehearse a deployment
with no vendor account. Each package's docstring says what it is faithful to, and its
FIDELITY.md lists each imitated behaviour with its source and the test that pins it.
Only 127.0.0.1 is ever bound.
"""
