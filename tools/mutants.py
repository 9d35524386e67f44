"""The targeted mutants of the security- and data-critical code (see tools/mutation_check.py).

Each mutant is one plausible mistake a change could make: it replaces one exact snippet of
one file, names the promise it breaks, and lists the tests that must catch it. A test path
that does not exist (yet) is left out of the selection, so the same list scores an older
tree too. tests/tools/test_mutants.py checks that every snippet is still found exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    original: str  # found exactly once in `path`
    replacement: str
    breaks: str  # the promise this mistake breaks
    tests: tuple[str, ...]  # pytest paths or node ids that must fail


MAIN_PROGRAM = "tests/test_main_program.py"
EXPLICIT_MUX_KEYS = "tests/test_explicit_mux_keys.py"
MUX_RESTART = "tests/test_mux_restart.py"
DERIVED_OUTPUTS = "tests/components/test_derived_outputs.py"
DERIVATION = "tests/components/test_derivation.py"
SETTINGS = "tests/components/test_settings.py"
DETERMINISM = "tests/test_determinism.py"
DRIVER_UNIT = "tests/driver/test_env_handoff.py"
DRIVER_SCRUB = "tests/driver/test_scrub.py"
DRIVER_SAFETY = "tests/driver/test_driver_safety_with_emulator.py"
DRIVER_DELETE = (
    "tests/driver/test_delete.py::test_delete_removes_the_recorded_cvm",
    "tests/driver/test_delete.py::test_deleting_twice_succeeds_the_second_time_as_already_gone",
    "tests/driver/test_update.py::"
    "test_openclaw_compose_never_lands_on_the_mux_cvm_and_never_deletes_it",
)
DRIVER_SECRETS = (
    "tests/driver/test_create.py::test_create_waits_for_running_and_reports_the_cvm_it_made",
    "tests/driver/test_secrets_in_transit.py",
)
DRIVER_LIFECYCLE = "tests/driver/test_service_lifecycle.py"
DRIVER_WAITING = "tests/driver/test_waiting.py"

MUTANTS: tuple[Mutant, ...] = (
    # ---------------------------------------------------------------- derivation
    Mutant(
        "derivation: master key trimmed before HKDF",
        "components/derivation.py",
        'return master_key.encode("utf-8")',
        'return master_key.strip().encode("utf-8")',
        "derived values match what the image derives from the untrimmed key",
        (DERIVATION,),
    ),
    Mutant(
        "derivation: HKDF extract with a salt",
        "components/derivation.py",
        "prk = HKDF.extract(hashes.SHA256(), None, _ikm(master_key, what))",
        'prk = HKDF.extract(hashes.SHA256(), b"openclaw", _ikm(master_key, what))',
        "derived values match the image's empty-salt HKDF",
        (DERIVATION,),
    ),
    Mutant(
        "derivation: gateway token keeps '/' and '+'",
        "components/derivation.py",
        '_GATEWAY_TOKEN_DROP = str.maketrans("", "", "/+=")',
        '_GATEWAY_TOKEN_DROP = str.maketrans("", "", "=")',
        "the gateway token equals the image's",
        (DERIVATION,),
    ),
    Mutant(
        "derivation: admin token equals the register key",
        "components/derivation.py",
        "admin_token=_b64url_nopad(admin),",
        "admin_token=_b64url_nopad(register),",
        "tenants (who hold the register key) cannot act as the mux admin",
        (DERIVATION, MAIN_PROGRAM),
    ),
    Mutant(
        "derivation: repr shows every field",
        "components/derivation.py",
        'f"{f.name}={getattr(obj, f.name)!r}" if f.metadata.get("public") else',
        'f"{f.name}={getattr(obj, f.name)!r}" if True else',
        "derived secrets never appear in a repr",
        (DERIVATION,),
    ),
    Mutant(
        "derivation: empty master key accepted",
        "components/derivation.py",
        "    if not master_key:\n",
        "    if master_key is None:\n",
        "nothing is derived from an empty key (the image derives nothing then)",
        (DERIVATION,),
    ),
    # ---------------------------------------------------------------- derived outputs
    Mutant(
        "derived outputs: gateway token not secret where it is made",
        "components/derived_outputs.py",
        "gateway_token=pulumi.Output.secret(known.gateway_token),",
        "gateway_token=pulumi.Output.from_input(known.gateway_token),",
        "every derived value is secret from the start",
        (DERIVED_OUTPUTS, MAIN_PROGRAM),
    ),
    Mutant(
        "derived outputs: rclone crypt password not secret where it is made",
        "components/derived_outputs.py",
        "rclone_crypt_password=pulumi.Output.secret(known.rclone_crypt_password),",
        "rclone_crypt_password=pulumi.Output.from_input(known.rclone_crypt_password),",
        "every derived value is secret from the start",
        (DERIVED_OUTPUTS, MAIN_PROGRAM),
    ),
    Mutant(
        "derived outputs: mux keys derived from an unmarked master key",
        "components/derived_outputs.py",
        "keys = pulumi.Output.secret(mux_master_key).apply(derivation.derive_mux_keys)\n"
        "    return MuxKeyOutputs(\n"
        "        register_key=pulumi.Output.secret(keys.apply(lambda k: k.register_key)),",
        "keys = pulumi.Output.from_input(mux_master_key).apply(derivation.derive_mux_keys)\n"
        "    return MuxKeyOutputs(\n"
        "        register_key=keys.apply(lambda k: k.register_key),",
        "every derived value is secret from the start",
        (DERIVED_OUTPUTS, MAIN_PROGRAM),
    ),
    Mutant(
        "derived outputs: openclawId made secret",
        "components/derived_outputs.py",
        "openclaw_id=pulumi.Output.from_input(known.openclaw_id),",
        "openclaw_id=pulumi.Output.secret(known.openclaw_id),",
        "the openclawId stays readable in outputs and other stacks",
        (DERIVED_OUTPUTS, MAIN_PROGRAM),
    ),
    # ---------------------------------------------------------------- storage
    Mutant(
        "storage: bucket deleted with the tenant",
        "components/tenant_storage.py",
        "                retain_on_delete=True,\n",
        "                retain_on_delete=False,\n",
        "removing a tenant never deletes its bucket",
        (MAIN_PROGRAM,),
    ),
    Mutant(
        "storage: the token's value not an additional secret output",
        "components/cloudflare_resources.py",
        'additional_secret_outputs=["value"]',
        "additional_secret_outputs=[]",
        "the R2 token's value is secret in state, as the SDK's AccountToken makes it",
        ("tests/components/test_cloudflare_resources.py",),
    ),
    Mutant(
        "storage: Cloudflare resources registered without the SDK's version",
        "components/cloudflare_resources.py",
        "pulumi.ResourceOptions(version=sdk_version())",
        "pulumi.ResourceOptions()",
        "the Cloudflare resources keep the SDK's default provider in state",
        ("tests/components/test_cloudflare_resources.py",),
    ),
    Mutant(
        "storage: token scoped to every bucket of the account",
        "components/r2.py",
        'return f"com.cloudflare.edge.r2.bucket.{account_id}_{jurisdiction}_{bucket}"',
        'return f"com.cloudflare.edge.r2.bucket.{account_id}_{jurisdiction}_*"',
        "a tenant's token reaches only its own bucket",
        ("tests/components/test_r2.py", MAIN_PROGRAM),
    ),
    Mutant(
        "storage: S3 secret access key not marked secret",
        "components/tenant_storage.py",
        "self.s3_secret_access_key = pulumi.Output.secret(token.value.apply(",
        "self.s3_secret_access_key = pulumi.Output.from_input(token.value.apply(",
        "S3 credentials are secret wherever they flow",
        (MAIN_PROGRAM,),
    ),
    Mutant(
        "storage: S3 secret registered as a plain component output",
        "components/tenant_storage.py",
        '"s3SecretAccessKey": self.s3_secret_access_key,',
        '"s3SecretAccessKey": pulumi.Output.unsecret(self.s3_secret_access_key),',
        "no secret in any plain output (component outputs are written to state)",
        (MAIN_PROGRAM,),
    ),
    Mutant(
        "tenant: gateway token registered as a plain component output",
        "components/openclaw_tenant.py",
        '"openclawId": self.openclaw_id,\n                "cvmId": self.cvm.cvm_id,',
        '"openclawId": self.openclaw_id,\n'
        '                "gatewayToken": pulumi.Output.unsecret(keys.gateway_token),\n'
        '                "cvmId": self.cvm.cvm_id,',
        "no secret in any plain output (component outputs are written to state)",
        (MAIN_PROGRAM,),
    ),
    Mutant(
        "storage: S3 secret access key is the raw token value",
        "components/r2.py",
        "return hashlib.sha256(token_value.encode()).hexdigest()",
        "return token_value",
        "the S3 secret is the SHA-256 of the token value, as R2 requires",
        ("tests/components/test_r2.py", MAIN_PROGRAM),
    ),
    # ---------------------------------------------------------------- driver
    Mutant(
        "driver: the env handed over in a file",
        "driver/deployer.py",
        '[*args, option("env", pipe.path)], f"creating CVM {spec.name}"',
        '[*args, option("env", str(write_private(workdir / "e.env", pipe._data.decode())))], '
        'f"creating CVM {spec.name}"',
        "the CVM's secrets never rest on disk",
        (DRIVER_SAFETY, *DRIVER_SECRETS),
    ),
    Mutant(
        "driver: the CLI outlives a killed driver",
        "driver/cli.py",
        "        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)\n",
        "        pass\n",
        "no phala CLI outlives its driver",
        ("tests/driver/test_killed_driver.py",),
    ),
    Mutant(
        "driver: temp dir world-readable",
        "driver/env_handoff.py",
        "        path.chmod(0o700)\n",
        "        path.chmod(0o755)\n",
        "the driver's work dir is 0700",
        (DRIVER_SAFETY, DRIVER_UNIT),
    ),
    Mutant(
        "driver: temp dir left behind",
        "driver/env_handoff.py",
        "    finally:\n        shutil.rmtree(path, ignore_errors=True)\n",
        "    finally:\n        pass\n",
        "temp files are removed on every exit path",
        (DRIVER_UNIT, DRIVER_DELETE[0]),
    ),
    Mutant(
        "driver: final scrub of the exit message dropped",
        "driver/phala_cvm.py",
        'print(scrub(f"openclaw-phala: error: {error}"), file=sys.stderr, flush=True)',
        'print(f"openclaw-phala: error: {error}", file=sys.stderr, flush=True)',
        "no secret in the driver's error messages",
        (DRIVER_SAFETY, *DRIVER_SECRETS),
    ),
    Mutant(
        "driver: env secrets not scrubbed",
        "driver/phala_cvm.py",
        "        scrub = Scrubber([*spec.secret_values, api_key])\n",
        "        scrub = Scrubber([api_key])\n",
        "no secret in the driver's output",
        (DRIVER_SAFETY, *DRIVER_SECRETS),
    ),
    Mutant(
        "driver: multi-line secrets not scrubbed line by line",
        "driver/scrub.py",
        "variants.update(line for line in secret.splitlines() if len(line) >= 8)",
        "pass",
        "no line of a PEM key in the driver's output",
        (DRIVER_SCRUB, *DRIVER_SECRETS),
    ),
    Mutant(
        "driver: env value quoted lossily",
        "driver/env_handoff.py",
        'if \'"\' not in value and "\\\\n" not in value and "\\\\r" not in value:',
        "if '\"' not in value:",
        "secret values arrive byte-exact",
        (DRIVER_UNIT, *DRIVER_SECRETS),
    ),
    Mutant(
        "driver: the CLI sees the operator's HOME",
        "driver/cli.py",
        '"HOME": str(home),',
        '"HOME": environ.get("HOME", str(home)),',
        "nothing on the operator's machine (such as ~/.ssh keys) changes a deploy",
        (DRIVER_SAFETY, *DRIVER_SECRETS),
    ),
    Mutant(
        "driver: a failed delete reported as success",
        "driver/deployer.py",
        "            if current is None or cvm_state.is_dying(current):\n                break",
        "            if True:\n                break",
        "a CVM is dropped from state only once it is deleted",
        (DRIVER_SAFETY, *DRIVER_DELETE),
    ),
    Mutant(
        "driver: delete skips the role check",
        "driver/deployer.py",
        '            self.check_role(existing)\n            self.log(f"deleting CVM',
        '            self.log(f"deleting CVM',
        "a tenant's delete never removes the mux (or another CVM)",
        (DRIVER_SAFETY, *DRIVER_DELETE),
    ),
    Mutant(
        "driver: an update counted done while still in progress",
        "driver/waiting.py",
        "            if not cvm_state.in_progress(cvm):\n                failure",
        "            if True:\n                failure",
        "a deploy ends only once the CVM has restarted on what was sent",
        (DRIVER_WAITING, DRIVER_LIFECYCLE),
    ),
    Mutant(
        "driver: a dying CVM adopted",
        "driver/deployer.py",
        "        live = [cvm for cvm in matches if not cvm_state.is_dying(cvm)]",
        "        live = list(matches)",
        "a CVM being deleted is never adopted; its name is reused only once it is gone",
        (DRIVER_LIFECYCLE,),
    ),
    # ---------------------------------------------------------------- settings
    Mutant(
        "settings: plaintext secret scalar accepted",
        "components/config_parser.py",
        'if key.secret and text != "" and key.name not in raw.secret_keys:',
        'if key.secret and text == "" and key.name not in raw.secret_keys:',
        "secrets must be stored encrypted in the stack config",
        (SETTINGS,),
    ),
    Mutant(
        "settings: plaintext tenantSecrets accepted",
        "components/tenant_config.py",
        "if secrets and TENANT_SECRETS_KEY not in raw.secret_keys:",
        "if not secrets and TENANT_SECRETS_KEY not in raw.secret_keys:",
        "secrets must be stored encrypted in the stack config",
        (SETTINGS,),
    ),
    Mutant(
        "settings: short tenant master key accepted",
        "components/tenant_config.py",
        "    elif len(master_key) < MIN_MASTER_KEY_LENGTH:\n",
        "    elif len(master_key) < 1:\n",
        "a tenant MASTER_KEY has at least the minimum length",
        (SETTINGS, MAIN_PROGRAM),
    ),
    Mutant(
        "settings: a BOM at the edge of a master key accepted",
        "components/tenant_config.py",
        'return any(edge.isspace() or edge == "\\ufeff" for edge in (key[0], key[-1]))',
        "return any(edge.isspace() for edge in (key[0], key[-1]))",
        "the image and OpenClaw derive from the same key",
        (SETTINGS,),
    ),
    Mutant(
        "settings: short mux master key accepted",
        "components/config_parser.py",
        "elif len(master_key) < MIN_MASTER_KEY_LENGTH:",
        "elif len(master_key) < 1:",
        "the mux master key has at least the minimum length",
        (SETTINGS,),
    ),
    Mutant(
        "settings: a secret tenant name accepted as structure",
        "components/config_parser.py",
        "    for key in sorted(raw.secret_keys - SECRET_KEY_NAMES):",
        '    for key in sorted(raw.secret_keys - SECRET_KEY_NAMES - {"tenants"}):',
        "names, modes and ids are plain, so they can be reviewed",
        ("tests/components/test_config_parser.py",),
    ),
    Mutant(
        "tenant removal: removing every tenant allowed",
        "components/tenant_removal.py",
        "        if count == len(self.running):\n            return True",
        "        if count == len(self.running):\n            return False",
        "a run never removes every running tenant without an opt-in",
        ("tests/components/test_tenant_removal.py",),
    ),
    Mutant(
        "ops: a master key file its group can read accepted",
        "ops/__init__.py",
        "if private and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):",
        "if private and info.st_mode & stat.S_IRWXO:",
        "a MASTER_KEY file is readable by its owner only",
        ("tests/ops/test_bounded_reads.py", "tests/ops/test_backup.py"),
    ),
    Mutant(
        "settings: SecretValue repr shows the value",
        "components/secret_value.py",
        'return f"SecretValue({_REDACTED})"',
        'return f"SecretValue({self._value})"',
        "settings reprs (tracebacks, logs) never show a secret",
        (SETTINGS, "tests/components/test_secret_value.py"),
    ),
    # ---------------------------------------------------------------- mux wiring
    Mutant(
        "mux: derived keys win over explicit ones",
        "components/mux_server.py",
        "return _secret(explicit) if explicit is not None else derived",
        "return derived if derived is not None else _secret(explicit)",
        "muxRegisterKey/muxAdminToken set explicitly keep running tenants on the mux",
        (EXPLICIT_MUX_KEYS, MAIN_PROGRAM),
    ),
    Mutant(
        "mux: tenants get the admin token as register key",
        "components/mux_server.py",
        "self.endpoint = MuxEndpoint(base_url=self.base_url, register_key=register_key)",
        "self.endpoint = MuxEndpoint(base_url=self.base_url, register_key=admin_token)",
        "tenants hold the register key, never the admin token",
        (MAIN_PROGRAM, EXPLICIT_MUX_KEYS),
    ),
    Mutant(
        "mux: bot tokens not named secret to the driver",
        "components/cvm_env.py",
        "    secret_names = frozenset(values)\n",
        '    secret_names = frozenset(("MUX_REGISTER_KEY", "MUX_ADMIN_TOKEN"))\n',
        "the driver scrubs every mux secret from what it prints",
        (MAIN_PROGRAM, "tests/components"),
    ),
    Mutant(
        "mux: muxSecrets exported in plain",
        "components/stack_outputs.py",
        'pulumi.Output.secret({"registerKey": mux.register_key, "adminToken": mux.admin_token}),',
        '{"registerKey": mux.register_key, "adminToken": mux.admin_token},',
        "the mux's secrets are a secret output",
        (MAIN_PROGRAM,),
    ),
    Mutant(
        "mux: a register key read from another stack is not re-marked secret",
        "components/mux_reference.py",
        'register_key=pulumi.Output.secret(field("muxSecrets", "registerKey")),',
        'register_key=field("muxSecrets", "registerKey"),',
        "the register key stays secret across a StackReference",
        ("tests/components/test_mux_reference.py", "tests/test_stack_reference.py"),
    ),
    Mutant(
        "mux: the JWT key guard never sees the deployed key id",
        "components/mux_server.py",
        "        pem,\n        args.deployed_jwt_key_id,\n",
        "        pem,\n        None,\n",
        "a new JWT key for a running mux is refused unless muxAllowKeyChange",
        (MUX_RESTART,),
    ),
    Mutant(
        "mux: JWT key sent as its multi-line PEM",
        "components/mux_server.py",
        "else pulumi.Output.secret(jwt_pem.apply(mux_jwt_key.env_value))",
        "else pulumi.Output.secret(jwt_pem)",
        "the mux's JWT key reaches it intact through dstack",
        (MAIN_PROGRAM, EXPLICIT_MUX_KEYS, MUX_RESTART),
    ),
    Mutant(
        "mux: compose wrapper runs the mux without exec",
        "compose/mux.yml",
        '        exec "$$@"\n',
        '        "$$@"\n',
        "node stays the container's main process and gets the stop signal",
        (MUX_RESTART,),
    ),
    Mutant(
        "settings: explicit JWT key accepted unchecked",
        "components/config_parser.py",
        "jwt_key_problem = mux_jwt_key.problem(jwt_key.reveal()) if jwt_key is not None else None",
        "jwt_key_problem = None",
        "a JWT key the mux could not load fails the preview, never a running mux",
        (SETTINGS, EXPLICIT_MUX_KEYS),
    ),
    # ---------------------------------------------------------------- determinism
    Mutant(
        "determinism: secret env names in set order",
        "components/phala_cvm.py",
        'protocol.SECRET_ENV_KEYS: ",".join(\n'
        "            name for name in args.env.values if name in args.env.secret_names\n"
        "        ),",
        'protocol.SECRET_ENV_KEYS: ",".join(args.env.secret_names),',
        "the same config gives identical resource inputs on any machine",
        (MAIN_PROGRAM, DETERMINISM),
    ),
    Mutant(
        "determinism: denied node commands in set order",
        "components/openclaw_config.py",
        '"nodes": {"denyCommands": list(DENIED_NODE_COMMANDS)},',
        '"nodes": {"denyCommands": list(set(DENIED_NODE_COMMANDS))},',
        "the same config gives identical resource inputs on any machine",
        ("tests/components/test_openclaw_config.py", DETERMINISM),
    ),
    Mutant(
        "determinism: placeholders from Python's salted hash",
        "plan/placeholders.py",
        'digest = hashlib.sha256(f"{path}\\n{ciphertext}".encode()).hexdigest()',
        'digest = f"{hash((path, ciphertext)) & (2**160 - 1):040x}"',
        "an offline plan is the same on every machine",
        ("tests/plan/test_placeholders.py", DETERMINISM),
    ),
    Mutant(
        "determinism: compose re-serialized instead of the template's bytes",
        "components/compose.py",
        "    return rendered\n\n\ndef openclaw_compose",
        "    return yaml.safe_dump(document)\n\n\ndef openclaw_compose",
        "the compose is the reviewed template byte for byte",
        ("tests/components/test_compose.py", DETERMINISM),
    ),
)
