"""MuxServer: the shared mux-server CVM that fronts the chat bots for many tenants."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import mux_jwt_key, urls
from components.compose import mux_compose
from components.cvm_env import mux_env
from components.data_guards import MUX_LOST
from components.derived_outputs import mux_key_outputs
from components.key_change import GuardedKey, KeyToCheck, checked_keys, key_fingerprint
from components.phala_cvm import HealthCheck, LocalState, PhalaCvm, PhalaCvmArgs
from components.secret_value import SecretValue
from components.settings import MuxSettings, PhalaSettings
from driver import protocol


@dataclass(frozen=True)
class MuxEndpoint:
    """What a tenant needs to join a mux, whether deployed here or in another stack."""

    base_url: pulumi.Output[str]
    register_key: pulumi.Output[str]  # secret


@dataclass(frozen=True)
class MuxServerArgs:
    settings: MuxSettings
    image: str
    phala: PhalaSettings
    # The fingerprint of the register key the mux runs with (None: not deployed yet).
    deployed_register_key_fingerprint: pulumi.Input[str | None] = None
    # The JWKS key id of the JWT key it runs with (None: not deployed, or no stable key).
    deployed_jwt_key_id: pulumi.Input[str | None] = None
    repair_generation: int | pulumi.Output[int] = 0  # see components/drift_repair.py


REGISTER_KEY_CHANGE_LOSS = (
    "cuts every tenant off this mux: each holds the old key until it is redeployed"
)
JWT_KEY_CHANGE_LOSS = (
    "changes the key id of the mux's JWKS: every gateway refuses the mux's inbound messages "
    "until its cached JWKS may be fetched again (a 5-minute cooldown), and the mux retries "
    "them all that time"
)
NO_STABLE_JWT_KEY_WARNING = (
    "mux {name} has no stable JWT signing key (set muxMasterKey, or muxJwtPrivateKey): it "
    "makes a new one at each start, and after every restart the gateways refuse its inbound "
    "messages for up to 5 minutes"
)


def _secret(value: SecretValue | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value.reveal())


def _explicit_or_derived(
    explicit: SecretValue | None, derived: pulumi.Output[str] | None
) -> pulumi.Output[str] | None:
    # An explicit secret wins, so a running mux keeps the key its tenants already use.
    return _secret(explicit) if explicit is not None else derived


def _canonical_jwt_pem(explicit: SecretValue | None) -> SecretValue | None:
    # Settings checked that it loads; the mux gets the one form the tests run through Node.
    if explicit is None:
        return None
    return SecretValue(mux_jwt_key.canonical_pem(explicit.reveal()))


def _register_key_check(key: pulumi.Output[str], args: MuxServerArgs, explicit: bool) -> KeyToCheck:
    return KeyToCheck(
        key,
        args.deployed_register_key_fingerprint,
        GuardedKey(
            key_setting="muxRegisterKey" if explicit else "muxMasterKey",
            owner=f"mux {args.settings.name}",
            opt_in_setting="muxAllowKeyChange",
            loss=REGISTER_KEY_CHANGE_LOSS,
        ),
    )


def _jwt_key_check(
    pem: pulumi.Output[str] | None, args: MuxServerArgs, explicit: bool
) -> KeyToCheck:
    # Its public fingerprint is the key id the JWKS serves, which the gateways cache.
    return KeyToCheck(
        pem,
        args.deployed_jwt_key_id,
        GuardedKey(
            key_setting="muxJwtPrivateKey" if explicit else "muxMasterKey",
            owner=f"mux {args.settings.name}, JWT signing key",
            opt_in_setting="muxAllowKeyChange",
            loss=JWT_KEY_CHANGE_LOSS,
        ),
        fingerprint=mux_jwt_key.key_id,
    )


MUX_HEALTH_URL_TEMPLATE = f"https://{{app_id}}-{urls.MUX_PORT}.{{base_domain}}/health"


class MuxServer(pulumi.ComponentResource):
    cvm: PhalaCvm
    base_url: pulumi.Output[str]
    health_url: pulumi.Output[str]
    register_key: pulumi.Output[str]  # secret
    register_key_fingerprint: pulumi.Output[str]  # public: see components/key_change.py
    # The key id its JWKS serves (public); None when the mux makes its own key at each boot.
    jwt_key_id: pulumi.Output[str] | None
    admin_token: pulumi.Output[str]  # secret
    # The chat channels this mux is configured to serve (muxChannels), in config order.
    channels: tuple[str, ...]
    endpoint: MuxEndpoint

    def __init__(
        self, name: str, args: MuxServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("openclaw-phala:index:MuxServer", name, None, opts)
        mux = args.settings
        secrets = mux.secrets
        derived = mux_key_outputs(secrets.master_key.reveal()) if secrets.master_key else None

        register_key = _explicit_or_derived(
            secrets.register_key, derived.register_key if derived else None
        )
        admin_token = _explicit_or_derived(
            secrets.admin_token, derived.admin_token if derived else None
        )
        # Settings validation guarantees both exist (explicitly or through the master key).
        assert register_key is not None and admin_token is not None
        jwt_pem = _explicit_or_derived(
            _canonical_jwt_pem(secrets.jwt_private_key),
            derived.jwt_private_key_pem if derived else None,
        )
        if jwt_pem is None:
            pulumi.log.warn(NO_STABLE_JWT_KEY_WARNING.format(name=mux.name), resource=self)
        checked_register_key, jwt_pem = checked_keys(
            [
                _register_key_check(register_key, args, secrets.register_key is not None),
                _jwt_key_check(jwt_pem, args, secrets.jwt_private_key is not None),
            ],
            mux.allow_key_change,
        )
        assert checked_register_key is not None
        register_key = checked_register_key

        self.cvm = PhalaCvm(
            name,
            PhalaCvmArgs(
                cvm_name=mux.name,
                role="mux",
                compose=mux_compose(args.image),
                env=mux_env(
                    register_key=register_key,
                    admin_token=admin_token,
                    jwt_private_key_b64=(
                        None
                        if jwt_pem is None
                        else pulumi.Output.secret(jwt_pem.apply(mux_jwt_key.env_value))
                    ),
                    telegram_bot_token=_secret(secrets.telegram_bot_token),
                    discord_bot_token=_secret(secrets.discord_bot_token),
                    telegram_bot_username=mux.telegram_bot_username,
                ),
                phala=args.phala,
                instance_type=mux.instance_type,
                existing_cvm_id=mux.existing_cvm_id,
                # The pairing DB and WhatsApp auth live on the CVM's volumes.
                local_state=LocalState(
                    "muxAllowDataLoss",
                    mux.allow_data_loss,
                    lost=MUX_LOST,
                    how="set muxAllowDataLoss: true",
                ),
                repair_generation=args.repair_generation,
                health_check=HealthCheck(MUX_HEALTH_URL_TEMPLATE, protocol.HEALTH_EXPECT_JSON_OK),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.base_url = self.cvm.address(urls.mux_base_url)
        self.health_url = self.cvm.address(urls.mux_health_url)
        self.register_key = register_key
        self.register_key_fingerprint = pulumi.Output.unsecret(register_key.apply(key_fingerprint))
        self.jwt_key_id = (
            None if jwt_pem is None else pulumi.Output.unsecret(jwt_pem.apply(mux_jwt_key.key_id))
        )
        self.admin_token = admin_token
        self.channels = tuple(channel.value for channel in mux.channels)
        self.endpoint = MuxEndpoint(base_url=self.base_url, register_key=register_key)

        self.register_outputs(
            {
                "cvmId": self.cvm.cvm_id,
                "appId": self.cvm.app_id,
                "baseUrl": self.base_url,
                "healthUrl": self.health_url,
            }
        )
