"""Reading the stack's config from the Pulumi runtime into Settings."""

from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config

from components.config_keys import PROJECT
from components.config_parser import parse_settings
from components.settings import Settings, SettingsError, read_raw_config


def load_settings() -> Settings:
    """Parse and validate this stack's config, failing the preview with every problem.

    A RunError makes Pulumi print the message alone, without a Python traceback.
    """
    all_config = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw = read_raw_config(all_config, runtime_config.is_config_secret, PROJECT)
    try:
        settings = parse_settings(raw)
    except SettingsError as error:
        raise pulumi.RunError(str(error)) from None
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    return settings
