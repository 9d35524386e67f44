"""The shapes the emulated API answers with, per API version.

The pinned CLI (npm phala@1.1.18) validates every response with zod, so each view follows
the schemas bundled in `node_modules/phala/dist/index.js` for the version the request names
in `X-Phala-Version`: `2025-10-28` (legacy; used by `phala deploy`) and `2026-01-21` (the
default for every other command). Fields the CLI drops but other clients read (the Python
SDK's `in_progress`, `progress`, `deleted_at`, `compose_file` as text or object) follow
the sources in FIDELITY.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from emulators.phala.behaviour import Behaviour, ComposeFileForm
from emulators.phala.compose import published_ports
from emulators.phala.models import (
    KMS_ID,
    KMS_SLUG,
    NODE_ID,
    NODE_NAME,
    STATUS_RUNNING,
    STATUS_STARTING,
    EmulatedCvm,
    PendingProvision,
    node_device_id,
)

API_VERSION_LEGACY = "2025-10-28"
API_VERSION_CURRENT = "2026-01-21"
SUPPORTED_API_VERSIONS = (API_VERSION_LEGACY, API_VERSION_CURRENT)


def legacy_kms_info(base_domain: str) -> dict[str, Any]:
    # chain_id must stay null: a non-null chain_id sends the CLI down the on-chain KMS path.
    return {
        "id": KMS_ID,
        "slug": KMS_SLUG,
        "url": f"https://kms.{base_domain}",
        "version": "v0.5.4",
        "chain_id": None,
        "kms_contract_address": None,
        "gateway_app_id": None,
    }


def provision_view(pending: PendingProvision, base_domain: str, image: str) -> dict[str, Any]:
    """`POST /cvms/provision`."""
    return {
        "app_id": pending.app_id,
        "app_env_encrypt_pubkey": pending.keypair.public_hex,
        "compose_hash": pending.compose_hash,
        "kms_info": legacy_kms_info(base_domain),
        "fmspc": "00806f050000",
        "device_id": node_device_id(),
        "os_image_hash": hashlib.sha256(image.encode()).hexdigest(),
        "instance_type": pending.request.get("instance_type"),
        "teepod_id": NODE_ID,
        "kms_id": KMS_ID,
    }


def commit_view(cvm: EmulatedCvm) -> dict[str, Any]:
    """`POST /cvms` (SDK `CommitCvmProvision` schema)."""
    return {
        "id": cvm.numeric_id,
        "name": cvm.name,
        "status": cvm.status,
        "teepod_id": NODE_ID,
        "teepod": {"id": NODE_ID, "name": NODE_NAME},
        "user_id": 1,
        "app_id": cvm.app_id,
        "vm_uuid": cvm.vm_uuid,
        "instance_id": cvm.instance_id,
        "app_url": None,
        "base_image": cvm.image,
        "vcpu": cvm.vcpu,
        "memory": cvm.memory_mb,
        "disk_size": cvm.disk_size_gb,
        "manifest_version": 2,
        "version": "1.0.0",
        "runner": "docker-compose",
        "docker_compose_file": cvm.docker_compose_file,
        "features": ["kms", "tproxy-net"],
        "created_at": cvm.created_at,
        "encrypted_env_pubkey": cvm.env_pubkey_hex,
    }


def update_view(cvm: EmulatedCvm, allowed_envs_changed: bool) -> dict[str, Any]:
    """`PATCH /cvms/{id}`: 202 with the operation's correlation id."""
    return {
        "correlation_id": cvm.correlation_id,
        "status": "in_progress",
        "message": "CVM update accepted",
        "compose_hash": cvm.compose_hash,
        "allowed_envs_changed": allowed_envs_changed,
    }


def endpoints(cvm: EmulatedCvm) -> list[dict[str, str]]:
    domain = cvm.gateway_base_domain
    return [
        {
            "app": f"https://{cvm.app_id}-{port}.{domain}",
            "instance": f"https://{cvm.instance_id}-{port}.{domain}",
        }
        for port in published_ports(cvm.docker_compose_file)
    ]


def cvm_view(cvm: EmulatedCvm, api_version: str, behaviour: Behaviour) -> dict[str, Any]:
    """`GET /cvms/{id}`."""
    if api_version == API_VERSION_LEGACY:
        return legacy_cvm_view(cvm)
    view = current_cvm_summary(cvm)
    view["compose_file"] = (
        json.dumps(cvm.app_compose)
        if behaviour.compose_file_form is ComposeFileForm.STRING
        else dict(cvm.app_compose)
    )
    return view


def legacy_cvm_view(cvm: EmulatedCvm) -> dict[str, Any]:
    """X-Phala-Version 2025-10-28 (SDK legacy CvmDetail)."""
    return {
        "id": cvm.numeric_id,
        "name": cvm.name,
        "status": cvm.status,
        "in_progress": cvm.in_progress,
        "teepod_id": NODE_ID,
        "teepod": {"id": NODE_ID, "name": NODE_NAME, "region_identifier": cvm.region},
        "app_id": cvm.app_id,
        "vm_uuid": cvm.vm_uuid,
        "instance_id": cvm.instance_id,
        "vcpu": cvm.vcpu,
        "memory": cvm.memory_mb,
        "disk_size": cvm.disk_size_gb,
        "base_image": cvm.image,
        "encrypted_env_pubkey": cvm.env_pubkey_hex,
        "listed": cvm.listed,
        "project_id": None,
        "project_type": None,
        "instance_type": cvm.instance_type,
        "public_sysinfo": cvm.public_sysinfo,
        "public_logs": cvm.public_logs,
        "dapp_dashboard_url": None,
        "syslog_endpoint": None,
        "kms_info": legacy_kms_info(cvm.gateway_base_domain),
        "contract_address": None,
        "deployer_address": None,
        "scheduled_delete_at": None,
        "public_urls": endpoints(cvm),
        "gateway_domain": cvm.gateway_base_domain,
        "machine_info": {
            "vcpu": cvm.vcpu,
            "memory": cvm.memory_mb,
            "disk_size": cvm.disk_size_gb,
            "gpu_count": 0,
        },
        "updated_at": cvm.updated_at,
        "created_at": cvm.created_at,
        "deleted_at": cvm.deleted_at,
        "compose_hash": cvm.compose_hash,
    }


def current_cvm_summary(cvm: EmulatedCvm) -> dict[str, Any]:
    """X-Phala-Version 2026-01-21 (SDK CvmInfoDetailV20260121, without compose_file)."""
    progress = (
        {
            "target": progress_target(cvm),
            "started_at": cvm.operation_started_at,
            "correlation_id": cvm.correlation_id,
        }
        if cvm.in_progress
        else None
    )
    return {
        "id": str(cvm.numeric_id),
        "name": cvm.name,
        "app_id": cvm.app_id,
        "vm_uuid": cvm.vm_uuid,
        "instance_id": cvm.instance_id,
        "resource": {
            "instance_type": cvm.instance_type,
            "vcpu": cvm.vcpu,
            "memory_in_gb": cvm.memory_mb / 1024,
            "disk_in_gb": cvm.disk_size_gb,
            "gpus": 0,
            "compute_billing_price": None,
            "billing_period": None,
        },
        "node_info": {
            "object_type": "node",
            "id": NODE_ID,
            "name": NODE_NAME,
            "region": cvm.region,
            "device_id": node_device_id(),
            "ppid": None,
            "status": "online",
            "version": "0.5.4",
        },
        "os": {
            "name": cvm.image,
            "version": "0.5.4",
            "is_dev": cvm.prefer_dev,
            "os_image_hash": hashlib.sha256(cvm.image.encode()).hexdigest(),
        },
        "kms_type": cvm.kms.lower(),
        "kms_info": {
            "chain_id": None,
            "dstack_kms_address": None,
            "dstack_app_address": None,
            "deployer_address": None,
            "rpc_endpoint": None,
            "encrypted_env_pubkey": cvm.env_pubkey_hex,
        },
        "status": cvm.status,
        "in_progress": cvm.in_progress,
        "progress": progress,
        "compose_hash": cvm.compose_hash,
        "gateway": {"base_domain": cvm.gateway_base_domain, "cname": None},
        "services": [],
        "endpoints": endpoints(cvm),
        "public_logs": cvm.public_logs,
        "public_sysinfo": cvm.public_sysinfo,
        "public_tcbinfo": True,
        "gateway_enabled": True,
        "secure_time": False,
        "listed": cvm.listed,
        "storage_fs": cvm.storage_fs or "ext4",
        "workspace": {
            "object_type": "workspace",
            "id": "ws_emulator",
            "name": "emulator-workspace",
            "slug": "emulator-workspace",
            "avatar_url": None,
        },
        "creator": {
            "object_type": "user",
            "id": "user_emulator",
            "username": "emulator-user",
            "avatar_url": None,
        },
        "created_at": cvm.created_at,
        "deleted_at": cvm.deleted_at,
    }


def progress_target(cvm: EmulatedCvm) -> str:
    """The status the running operation heads for."""
    return "deleted" if cvm.operation_type == "delete" else STATUS_RUNNING


def app_view(cvm: EmulatedCvm, api_version: str) -> dict[str, Any]:
    """One entry of `GET /apps`. A deleted CVM leaves its app without a current CVM."""
    current: dict[str, Any] | None
    if cvm.deleted:
        current = None
    elif api_version == API_VERSION_LEGACY:
        current = {
            "vm_uuid": cvm.vm_uuid,
            "app_id": cvm.app_id,
            "name": cvm.name,
            "status": cvm.status,
            "vcpu": cvm.vcpu,
            "memory": cvm.memory_mb,
            "disk_size": cvm.disk_size_gb,
            "teepod_id": NODE_ID,
            "teepod_name": NODE_NAME,
            "region_identifier": cvm.region,
            "kms_type": cvm.kms.lower(),
            "instance_type": cvm.instance_type,
            "listed": cvm.listed,
            "base_image": cvm.image,
            "kms_slug": KMS_SLUG,
            "kms_id": KMS_ID,
            "instance_id": cvm.instance_id,
            "updated_at": cvm.updated_at,
        }
    else:
        current = current_cvm_summary(cvm)
    return {
        "id": f"app-{cvm.numeric_id}",
        "name": cvm.name,
        "app_id": cvm.app_id,
        "app_provision_type": "dstack",
        "app_icon_url": None,
        "created_at": cvm.created_at,
        "kms_type": cvm.kms.lower(),
        "profile": None,
        "current_cvm": current,
        "cvms": [current] if current is not None else [],
        "cvm_count": 1 if current is not None else 0,
    }


def status_view(cvm: EmulatedCvm) -> dict[str, Any]:
    """One entry of `POST /status/batch`."""
    return {
        "vm_uuid": cvm.vm_uuid,
        "status": cvm.status,
        "uptime": uptime_text(cvm),
        "in_progress": cvm.in_progress,
        "boot_progress": "booting" if cvm.status == STATUS_STARTING else None,
        "boot_error": cvm.boot_error,
        "operation_type": cvm.operation_type,
        "operation_started_at": cvm.operation_started_at,
        "correlation_id": cvm.correlation_id if cvm.in_progress else None,
    }


def uptime_text(cvm: EmulatedCvm) -> str | None:
    if cvm.running_since is None or cvm.status != STATUS_RUNNING:
        return None
    seconds = int(time.monotonic() - cvm.running_since)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def auth_me_view(api_version: str, username: str, workspace: str) -> dict[str, Any]:
    """`GET /auth/me`."""
    email = f"{username}@example.invalid"
    if api_version == API_VERSION_LEGACY:
        return {
            "username": username,
            "email": email,
            "credits": 100,
            "granted_credits": 0,
            "avatar": "",
            "team_name": workspace,
            "team_tier": "pro",
        }
    return {
        "user": {
            "username": username,
            "email": email,
            "role": "user",
            "avatar": "",
            "email_verified": True,
            "totp_enabled": False,
            "has_backup_codes": False,
            "flag_has_password": True,
        },
        "workspace": {
            "id": "ws_emulator",
            "name": workspace,
            "slug": workspace,
            "tier": "pro",
            "role": "owner",
            "avatar": None,
        },
        "credits": {
            "balance": "100.00",
            "granted_balance": "0.00",
            "is_post_paid": False,
            "outstanding_amount": None,
        },
    }
