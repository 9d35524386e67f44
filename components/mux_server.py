"""MuxServer: the shared mux-server CVM that fronts the chat bots for many tenants."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import urls
from components.compose import mux_compose
from components.cvm_env import mux_env
from components.derived_outputs import mux_key_outputs
from components.key_change import GuardedKey, checked_key, key_fingerprint
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
    repair_generation: int | pulumi.Output[int] = 0  # see components/drift_repair.py


REGISTER_KEY_CHANGE_LOSS = (
    "cuts every tenant off this mux: each holds the old key until it is redeployed"
)


def _secret(value: SecretValue | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value.reveal())


def _explicit_or_derived(
    explicit: SecretValue | None, derived: pulumi.Output[str] | None
) -> pulumi.Output[str] | None:
    # An explicit secret wins, so a running mux keeps the key its tenants already use.
    return _secret(explicit) if explicit is not None else derived


MUX_HEALTH_URL_TEMPLATE = f"https://{{app_id}}-{urls.MUX_PORT}.{{base_domain}}/health"


class MuxServer(pulumi.ComponentResource):
    cvm: PhalaCvm
    base_url: pulumi.Output[str]
    health_url: pulumi.Output[str]
    register_key: pulumi.Output[str]  # secret
    register_key_fingerprint: pulumi.Output[str]  # public: see components/key_change.py
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
        register_key = checked_key(
            register_key,
            pulumi.Output.from_input(args.deployed_register_key_fingerprint),
            GuardedKey(
                key_setting="muxRegisterKey" if secrets.register_key else "muxMasterKey",
                owner=f"mux {mux.name}",
                opt_in_setting="muxAllowKeyChange",
                loss=REGISTER_KEY_CHANGE_LOSS,
            ),
            mux.allow_key_change,
        )

        self.cvm = PhalaCvm(
            name,
            PhalaCvmArgs(
                cvm_name=mux.name,
                role="mux",
                compose=mux_compose(args.image),
                env=mux_env(
                    register_key=register_key,
                    admin_token=admin_token,
                    telegram_bot_token=_secret(secrets.telegram_bot_token),
                    discord_bot_token=_secret(secrets.discord_bot_token),
                    telegram_bot_username=mux.telegram_bot_username,
                ),
                phala=args.phala,
                instance_type=mux.instance_type,
                existing_cvm_id=mux.existing_cvm_id,
                # The pairing DB and WhatsApp auth live on the CVM's volumes.
                local_state=LocalState("muxAllowDataLoss", mux.allow_data_loss),
                repair_generation=args.repair_generation,
                health_check=HealthCheck(MUX_HEALTH_URL_TEMPLATE, protocol.HEALTH_EXPECT_JSON_OK),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.base_url = self.cvm.address(urls.mux_base_url)
        self.health_url = self.cvm.address(urls.mux_health_url)
        self.register_key = register_key
        self.register_key_fingerprint = pulumi.Output.unsecret(register_key.apply(key_fingerprint))
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
