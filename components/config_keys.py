"""The stack's config keys: every top-level key with its type, default and description,
the object keys (`tenants`, `tenantSecrets`) with their fields, and the enums their values
take. This is the schema `Pulumi.yaml` declares and the README's reference documents;
`components/settings.py` parses config against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

PROJECT: Final = "openclaw-phala"


class StorageMode(StrEnum):
    S3 = "s3"  # state encrypted by rclone crypt into the tenant's R2 bucket
    LOCAL = "local"  # state on a Docker volume inside the CVM: testing only


class MuxChannel(StrEnum):
    TELEGRAM = "telegram"
    DISCORD = "discord"
    WHATSAPP = "whatsapp"


R2_JURISDICTIONS: Final = ("default", "eu", "fedramp")
DEFAULT_S3_PREFIX: Final = "openclaw-data"

# Limits the settings enforce. Each is in the README's configuration reference
# (tests/test_readme.py checks that every one is).
MIN_MASTER_KEY_LENGTH: Final = 32
MAX_SECRET_LENGTH: Final = 4096  # a key or token; far above any real one
MAX_ROLLOUT_WAVE: Final = 100
MAX_S3_PREFIX_LENGTH: Final = 256
MAX_SSH_PUBLIC_KEY_LENGTH: Final = 8192  # an RSA-16384 key line is about 2,800 characters
MIN_RSA_KEY_BITS: Final = 1024  # OpenSSH refuses smaller RSA keys
MAX_INSTANCE_TYPE_LENGTH: Final = 64
MAX_REGION_LENGTH: Final = 64
MAX_OS_IMAGE_LENGTH: Final = 128
MAX_IMAGE_NAME_LENGTH: Final = 255  # the registry's limit on a repository name
MAX_TENANTS: Final = 1000
MIN_WAIT_TIMEOUT_SECONDS: Final = 30
MAX_WAIT_TIMEOUT_SECONDS: Final = 3600
MIN_DISK_SIZE_GB: Final = 10
MAX_DISK_SIZE_GB: Final = 2048
# Removing tenants (components/tenant_removal.py): a run may remove one tenant, or up
# to this share of the running ones, without an opt-in; never all of them.
UNGUARDED_REMOVAL_SHARE: Final = 0.1


@dataclass(frozen=True)
class ScalarKey:
    """A top-level config key that Pulumi.yaml declares with a type and default."""

    name: str
    type: str  # "string" | "boolean" | "integer" | "array"
    default: Any
    description: str
    secret: bool = False  # must be stored encrypted (`pulumi config set --secret`)


# The single list of top-level scalar keys. tests/test_project_file.py checks that
# Pulumi.yaml declares exactly these, with the same types and defaults.
SCALAR_KEYS: Final[tuple[ScalarKey, ...]] = (
    ScalarKey(
        "cloudflareAccountId",
        "string",
        "",
        "Cloudflare account id (32 hex) owning the R2 buckets. Required when a tenant uses s3.",
    ),
    ScalarKey(
        "openclawImage",
        "string",
        "",
        "OpenClaw CVM image, pinned as <repo>@sha256:<64 hex>. Required when there are tenants.",
    ),
    ScalarKey(
        "muxImage",
        "string",
        "",
        "mux-server image, pinned as <repo>@sha256:<64 hex>. Required when muxName is set.",
    ),
    ScalarKey("phalaInstanceType", "string", "tdx.medium", "Default Phala instance type."),
    ScalarKey("phalaDevOs", "boolean", True, "Use the dev OS image (needed for SSH access)."),
    ScalarKey(
        "phalaSshPublicKey",
        "string",
        "",
        "SSH public key (one line) installed in dev-OS CVMs. Required when phalaDevOs is true.",
    ),
    ScalarKey(
        "phalaWaitTimeoutSeconds",
        "integer",
        600,
        "How long a deploy waits for a CVM to reach running.",
    ),
    ScalarKey(
        "phalaVerifyHealth",
        "boolean",
        True,
        "After running, wait until the mux /health and each gateway URL answer.",
    ),
    ScalarKey("phalaRegion", "string", "", "Phala region slug; empty lets Phala choose."),
    ScalarKey("phalaDiskSizeGb", "integer", 40, "Disk size of each CVM in GB."),
    ScalarKey("phalaOsImage", "string", "", "Phala OS image name; empty uses Phala's default."),
    ScalarKey("phalaKms", "string", "phala", "KMS for CVM keys. Only 'phala' is supported."),
    ScalarKey(
        "redpillApiKey",
        "string",
        "",
        "Secret. Redpill API key shared by tenants without their own override.",
        secret=True,
    ),
    ScalarKey("muxName", "string", "", "CVM name of the shared mux-server. Empty: no mux."),
    ScalarKey("muxInstanceType", "string", "", "Instance type of the mux; empty uses the default."),
    ScalarKey(
        "muxChannels",
        "array",
        [],
        "Chat channels the mux serves: telegram, discord, whatsapp. At least one with a mux.",
    ),
    ScalarKey(
        "muxCvmId", "string", "", "Existing mux CVM id (UUID or app_<hex>) to adopt, not recreate."
    ),
    ScalarKey(
        "muxTelegramBotUsername", "string", "", "Telegram bot username, for pairing deep links."
    ),
    ScalarKey(
        "muxAllowDataLoss",
        "boolean",
        False,
        "Allow replacing or deleting the mux CVM, which destroys its pairing DB and WhatsApp auth.",
    ),
    ScalarKey(
        "muxAllowKeyChange",
        "boolean",
        False,
        "Allow a new register key or JWT signing key for a running mux (after a new register "
        "key, every tenant must be redeployed).",
    ),
    ScalarKey(
        "muxStack",
        "string",
        "",
        "Take the mux from another stack (org/project/stack) instead of deploying one here.",
    ),
    ScalarKey(
        "muxMasterKey",
        "string",
        "",
        "Secret. Root key the mux register key, admin token and JWT signing key are derived "
        "from; the stable JWT key lets a mux restart without gateways refusing its messages.",
        secret=True,
    ),
    ScalarKey(
        "muxRegisterKey",
        "string",
        "",
        "Secret. Explicit MUX_REGISTER_KEY (overrides the derived one; keep today's key).",
        secret=True,
    ),
    ScalarKey(
        "muxAdminToken",
        "string",
        "",
        "Secret. Explicit MUX_ADMIN_TOKEN (overrides the derived one).",
        secret=True,
    ),
    ScalarKey(
        "muxJwtPrivateKey",
        "string",
        "",
        "Secret. Explicit MUX_JWT_PRIVATE_KEY: an Ed25519 private key PEM, set from its file "
        "(overrides the derived one; preview refuses a key the mux could not load).",
        secret=True,
    ),
    ScalarKey(
        "allowTenantRemoval",
        "array",
        [],
        "Tenants this run may remove although it removes many at once (names); then remove it.",
    ),
    ScalarKey(
        "muxTelegramBotToken",
        "string",
        "",
        "Secret. Telegram bot token; required when muxChannels has telegram.",
        secret=True,
    ),
    ScalarKey(
        "muxDiscordBotToken",
        "string",
        "",
        "Secret. Discord bot token; required when muxChannels has discord.",
        secret=True,
    ),
)

# Keys holding objects, which Pulumi.yaml cannot type (its schema knows only
# string, boolean, integer and array). They are validated field by field here.
TENANTS_KEY: Final = "tenants"
TENANT_SECRETS_KEY: Final = "tenantSecrets"
OBJECT_KEYS: Final = (TENANTS_KEY, TENANT_SECRETS_KEY)

TENANT_FIELDS: Final[Mapping[str, str]] = {
    "name": "CVM name: 5-63 characters, a letter first, letters, digits and single hyphens.",
    "storage": "'s3' (encrypted in R2, default) or 'local' (Docker volume, testing only).",
    "instanceType": "Phala instance type; defaults to phalaInstanceType.",
    "bucket": "R2 bucket name (s3 only); defaults to openclaw-<name>.",
    "jurisdiction": "R2 jurisdiction (s3 only): default, eu or fedramp.",
    "s3Prefix": "Key prefix inside the bucket (s3 only); defaults to openclaw-data.",
    "cvmId": "Existing CVM id (UUID or app_<hex>) to adopt instead of creating a new CVM.",
    "allowDataLoss": "Local storage only: allow replacing or deleting the CVM and its data.",
    "allowKeyChange": "Allow a new MASTER_KEY for this running tenant (its old state is lost).",
    "allowNewBucket": "S3 only: allow a new bucket or jurisdiction for this running tenant.",
    "rolloutWave": "Rollout wave, 0 first: a wave deploys once the one before is up and healthy.",
}
TENANT_SECRET_FIELDS: Final[Mapping[str, str]] = {
    "masterKey": "The tenant's MASTER_KEY (at least 32 characters). Keep today's key.",
    "redpillApiKey": "Per-tenant Redpill API key, overriding redpillApiKey.",
}
