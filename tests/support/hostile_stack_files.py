"""Hostile stack files: YAML that Pulumi's Go reader and a Python YAML reader disagree on.

Each case is the text of a `Pulumi.<stack>.yaml`. Tokens `@RP@`, `@MK@` and `@MUXMK@`
stand for ciphertexts of REDPILL, MASTER_KEY and MUX_MASTER_KEY made by the stack's
own secrets provider; `@SALT@` for its `encryptionsalt:` line. A case whose Pulumi run
fails names `shared`: words that both Pulumi's error and the offline plan's carry.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGE = "h4x3rotab/openclaw-cvm@sha256:" + "a" * 64
MUX_IMAGE = "h4x3rotab/openclaw-mux@sha256:" + "b" * 64
REDPILL = "rp-redpill-key-for-parity-tests-0123456789"
MASTER_KEY = "mk-master-key-for-parity-tests-0123456789ab"
MUX_MASTER_KEY = "mux-master-key-for-parity-tests-0123456789"
PLAINTEXTS = {"@RP@": REDPILL, "@MK@": MASTER_KEY, "@MUXMK@": MUX_MASTER_KEY}


@dataclass(frozen=True)
class HostileFile:
    name: str
    text: str
    shared: str | None = None  # set when Pulumi refuses the file itself


def _stack(*lines: str, tenant: str = "    - name: alice-agent\n      storage: local") -> str:
    """A valid stack (one local tenant, secrets encrypted) with extra config lines."""
    extra = "".join(f"  {line}\n" for line in lines)
    return (
        "@SALT@\nconfig:\n"
        f"  openclaw-phala:openclawImage: {IMAGE}\n"
        "  openclaw-phala:phalaDevOs: false\n"
        "  openclaw-phala:redpillApiKey:\n    secure: @RP@\n"
        f"  openclaw-phala:tenants:\n{tenant}\n"
        "  openclaw-phala:tenantSecrets:\n"
        "    alice-agent:\n      masterKey:\n        secure: @MK@\n"
        f"{extra}"
    )


_MUX = (
    "openclaw-phala:muxName: shared-mux",
    f"openclaw-phala:muxImage: {MUX_IMAGE}",
    "openclaw-phala:muxChannels: [whatsapp]",
)

# Six levels of ten aliases each: 10^6 nodes once expanded.
_ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcde", "bcdef", strict=True)
)

HOSTILE_FILES: tuple[HostileFile, ...] = (
    HostileFile("valid-baseline", _stack()),
    # YAML 1.1 booleans are strings to yaml.v3; Pulumi.yaml types phalaDevOs boolean
    HostileFile("bool-yes", _stack().replace("phalaDevOs: false", "phalaDevOs: yes"), "boolean"),
    HostileFile("bool-on", _stack().replace("phalaDevOs: false", "phalaDevOs: on"), "boolean"),
    HostileFile("bool-False", _stack().replace("phalaDevOs: false", "phalaDevOs: False")),
    HostileFile("bool-quoted", _stack().replace("phalaDevOs: false", 'phalaDevOs: "false"')),
    HostileFile("tilde-null", _stack("openclaw-phala:phalaRegion: ~")),
    HostileFile("empty-value", _stack("openclaw-phala:phalaOsImage:")),
    HostileFile("octal-040", _stack("openclaw-phala:phalaDiskSizeGb: 040")),
    HostileFile("hex-0x40", _stack("openclaw-phala:phalaDiskSizeGb: 0x40")),
    HostileFile("octal-0o77", _stack("openclaw-phala:phalaDiskSizeGb: 0o77")),
    HostileFile("binary-0b", _stack("openclaw-phala:phalaDiskSizeGb: 0b1000000")),
    HostileFile("underscore-int", _stack("openclaw-phala:phalaDiskSizeGb: 1_000")),
    HostileFile("float-integral", _stack("openclaw-phala:phalaDiskSizeGb: 40.0")),
    HostileFile("float-exponent", _stack("openclaw-phala:phalaDiskSizeGb: 1e2")),
    HostileFile("float-fraction", _stack("openclaw-phala:phalaDiskSizeGb: 40.5"), "integer"),
    HostileFile("quoted-leading-zero", _stack('openclaw-phala:phalaWaitTimeoutSeconds: "0600"')),
    HostileFile("sexagesimal", _stack("openclaw-phala:phalaOsImage: 10:00")),
    HostileFile("nan", _stack("openclaw-phala:phalaOsImage: .nan"), "unsupported value: NaN"),
    HostileFile("date-value", _stack("openclaw-phala:phalaRegion: 2024-01-01")),
    HostileFile(
        "timestamp-offset", _stack("openclaw-phala:phalaOsImage: 2001-12-14t21:59:43.10-05:00")
    ),
    HostileFile(
        "tenant-named-like-a-date",
        _stack(tenant="    - name: 2024-01-01\n      storage: local"),
    ),
    HostileFile(
        "tenant-secrets-keyed-by-a-date",
        _stack("  2024-02-03: {masterKey: {secure: @MK@}}"),  # inside tenantSecrets
    ),
    HostileFile(
        "duplicate-tenants-key",
        _stack("openclaw-phala:tenants: []"),
        'mapping key "openclaw-phala:tenants" already defined',
    ),
    HostileFile(
        "duplicate-field-in-tenant",
        _stack(tenant="    - name: alice-agent\n      storage: local\n      storage: s3"),
        'mapping key "storage" already defined',
    ),
    HostileFile(
        "duplicate-key-quoted-and-plain",
        _stack('"openclaw-phala:phalaRegion": a', "openclaw-phala:phalaRegion: b"),
        'mapping key "openclaw-phala:phalaRegion" already defined',
    ),
    HostileFile("bare-key-gets-the-namespace", _stack("phalaRegion: US-WEST-1")),
    HostileFile("old-config-spelling", _stack("openclaw-phala:config:phalaRegion: US-WEST-1")),
    HostileFile(
        "key-with-three-colons",
        _stack("a:b:c:d: x"),
        "could not parse a:b:c:d as a configuration key",
    ),
    HostileFile("binary-tag", _stack("openclaw-phala:phalaRegion: !!binary VVMtV0VTVC0x")),
    HostileFile("custom-tag", _stack("openclaw-phala:phalaRegion: !region US-WEST-1")),
    HostileFile("str-tag-on-number", _stack("openclaw-phala:phalaDiskSizeGb: !!str 40")),
    HostileFile(
        "int-tag-on-text",
        _stack("openclaw-phala:phalaRegion: !!int abc"),
        "as a !!int",
    ),
    HostileFile("python-tag", _stack("openclaw-phala:phalaRegion: !!python/object:os.system ls")),
    HostileFile("top-level-list", "- config\n- tenants\n", "expected project to be an object"),
    HostileFile("config-as-list", "config:\n  - openclaw-phala:muxName\n", "!!seq"),
    HostileFile("non-string-config-key", "@SALT@\nconfig:\n  5: x\n", "as a configuration key"),
    # yaml.v3 and PyYAML scan a tab differently: both refuse, naming lines 14 and 15
    HostileFile(
        "scanner-error-tab", _stack("openclaw-phala:phalaRegion: a\n\tb: c"), "invalid YAML"
    ),
    HostileFile(
        "non-string-top-level-key", "@SALT@\n5: five\nconfig: {}\n", "expected only string keys"
    ),
    HostileFile(
        "non-string-key-in-tenant",
        _stack(tenant="    - name: alice-agent\n      storage: local\n      7: x"),
    ),
    HostileFile(
        "tenant-secrets-as-list",
        _stack().replace(
            "tenantSecrets:\n    alice-agent:\n      masterKey:\n        secure: @MK@\n",
            "tenantSecrets:\n    - secure: @MK@\n",
        ),
    ),
    HostileFile(
        "tenant-secret-as-one-encrypted-value",
        _stack().replace(
            "    alice-agent:\n      masterKey:\n        secure: @MK@",
            "    alice-agent:\n      secure: @MK@",
        ),
    ),
    HostileFile(
        "mux-channels-number", _stack(*_MUX[:2], "openclaw-phala:muxChannels: 5"), "array<string>"
    ),
    HostileFile(
        "mux-channels-text",
        _stack(*_MUX[:2], "openclaw-phala:muxChannels: whatsapp"),
        "array<string>",
    ),
    HostileFile(
        "mux-with-encrypted-master-key",
        _stack(*_MUX, "openclaw-phala:muxMasterKey:", "  secure: @MUXMK@"),
    ),
    HostileFile(
        "plaintext-redpill-key",
        _stack().replace("redpillApiKey:\n    secure: @RP@", f"redpillApiKey: {REDPILL}"),
    ),
    HostileFile(
        "plaintext-mux-master-key", _stack(*_MUX, f"openclaw-phala:muxMasterKey: {MUX_MASTER_KEY}")
    ),
    HostileFile(
        "plaintext-tenant-secrets",
        _stack().replace(
            "      masterKey:\n        secure: @MK@", f"      masterKey: {MASTER_KEY}"
        ),
    ),
    HostileFile(
        "yes-in-tenant-field",
        _stack(tenant="    - name: alice-agent\n      storage: local\n      allowDataLoss: yes"),
    ),
    HostileFile(
        "rollout-wave-float",
        _stack(tenant="    - name: alice-agent\n      storage: local\n      rolloutWave: 3.0"),
    ),
    HostileFile(
        "rollout-wave-uint64",
        _stack(
            tenant="    - name: alice-agent\n      storage: local\n"
            "      rolloutWave: 18446744073709551615"
        ),
    ),
    HostileFile(
        "anchors-and-merge-keys",
        _stack(
            "  bob-agent: {masterKey: {secure: @MK@}}",  # inside tenantSecrets, the last key
            tenant="    - &base {name: alice-agent, storage: local}\n"
            "    - {<<: *base, name: bob-agent}",
        ),
    ),
    HostileFile(
        "alias-bomb",
        "@SALT@\n" + _ALIAS_BOMB + "config: {}\n",
        "excessive aliasing",
    ),
    HostileFile(
        "syntax-error",
        _stack("openclaw-phala:phalaRegion: [unclosed"),
        "line 13:",  # yaml.v3 names the line before the open flow sequence (line 14)
    ),
    HostileFile("null-integer", _stack("openclaw-phala:phalaDiskSizeGb: ~"), "integer"),
    HostileFile("signed-integer", _stack("openclaw-phala:phalaDiskSizeGb: +40")),
    HostileFile("quoted-signed-integer", _stack('openclaw-phala:phalaDiskSizeGb: "+40"')),
    HostileFile(
        "integer-past-uint64",
        _stack("openclaw-phala:phalaDiskSizeGb: 99999999999999999999"),
        "integer",
    ),
    HostileFile("uint64-as-text", _stack("openclaw-phala:phalaRegion: 18446744073709551615")),
    HostileFile("float-tag", _stack("openclaw-phala:phalaDiskSizeGb: !!float 40")),
    HostileFile(
        "bool-tag-on-yes",
        _stack().replace("phalaDevOs: false", "phalaDevOs: !!bool yes"),
        "as a !!bool",
    ),
    HostileFile(
        "null-tenants",
        _stack().replace("tenants:\n    - name: alice-agent\n      storage: local", "tenants: ~"),
    ),
    HostileFile(
        "secure-with-a-number", _stack("openclaw-phala:phalaRegion: {secure: 5}"), "string"
    ),
    HostileFile("merge-of-a-scalar", _stack("openclaw-phala:x: {<<: 5}"), "map merge requires map"),
    HostileFile("unknown-alias", _stack("openclaw-phala:phalaRegion: *nowhere"), "nowhere"),
    HostileFile("scalar-document", "just text\n", "expected project to be an object, was 'string'"),
    HostileFile("empty-file", ""),
    HostileFile("comments-only", "# nothing here\n"),
    HostileFile(
        "literal-block-ssh-key",
        _stack().replace("phalaDevOs: false", "phalaDevOs: true")
        + "  openclaw-phala:phalaSshPublicKey: |\n"
        + "    ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake test@ci\n",
    ),
    HostileFile(
        "unicode-tenant-name", _stack(tenant="    - name: alicé-agent\n      storage: local")
    ),
    HostileFile("byte-order-mark", "\ufeff" + _stack("openclaw-phala:phalaRegion: EU-1")),
    HostileFile(
        "second-document-ignored", _stack() + "---\nconfig:\n  openclaw-phala:phalaRegion: X\n"
    ),
)
