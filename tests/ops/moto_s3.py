"""A local S3 (moto server) and a writer that stores files the way the CVM does.

``MotoS3`` runs moto's S3 on 127.0.0.1 on a free port for one test, and reads
raw objects back with boto3 so tests can check what the bucket really holds.

``write_state_like_cvm`` mirrors the CVM entrypoint on purpose *without* using
the ops code under test: HKDF straight from ``cryptography``, ``rclone obscure``
of the real rclone, an rclone.conf file with ``[s3]``/``[s3-crypt]`` sections
as entrypoint.sh writes it, AWS credentials in the environment, then
``rclone copy`` as its sync loop does.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from moto.server import ThreadedMotoServer

# moto accepts any credentials; these only have to match between writer and puller.
ACCESS_KEY_ID = "AKIAALICEEXAMPLE0001"
SECRET_ACCESS_KEY = "alice-s3-secret-access-key-9876543210zyxw"


@dataclass
class MotoS3:
    endpoint: str
    client: Any

    def create_bucket(self) -> str:
        name = f"openclaw-state-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def raw_objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in ``bucket`` as stored: {key: bytes}."""
        objects: dict[str, bytes] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", []):
                body = self.client.get_object(Bucket=bucket, Key=entry["Key"])["Body"]
                objects[entry["Key"]] = body.read()
        return objects


@contextmanager
def running_moto_s3() -> Iterator[MotoS3]:
    # werkzeug logs every request at INFO; only failures are worth seeing.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
        )
        yield MotoS3(endpoint=endpoint, client=client)
    finally:
        server.stop()


def _derive_key(master_key: str, label: str) -> str:
    # entrypoint.sh: crypto.hkdfSync('sha256', MASTER_KEY, '', label, 32) as base64.
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode()).derive(
        master_key.encode("utf-8")
    )
    return base64.b64encode(raw).decode("ascii")


def _rclone_obscure(rclone: Path, plaintext: str) -> str:
    # `rclone obscure -` reads the value from stdin (the CVM passes it on argv
    # inside its own container; a test on a shared machine should not).
    completed = subprocess.run(
        [str(rclone), "obscure", "-"],
        input=plaintext,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def write_state_like_cvm(
    *,
    rclone: Path,
    s3: MotoS3,
    bucket: str,
    prefix: str,
    master_key: str,
    source: Path,
) -> None:
    """Uploads ``source`` into ``s3-crypt:`` exactly as a tenant CVM would."""
    with tempfile.TemporaryDirectory(prefix="fake-cvm-") as directory:
        config = Path(directory) / "rclone.conf"
        password = _rclone_obscure(rclone, _derive_key(master_key, "rclone-crypt-password"))
        salt = _rclone_obscure(rclone, _derive_key(master_key, "rclone-crypt-salt"))
        config.write_text(
            "[s3]\n"
            "type = s3\n"
            "provider = Cloudflare\n"
            "env_auth = true\n"
            f"endpoint = {s3.endpoint}\n"
            "region = auto\n"
            "no_check_bucket = true\n"
            "\n"
            "[s3-crypt]\n"
            "type = crypt\n"
            f"remote = s3:{bucket}/{prefix}\n"
            f"password = {password}\n"
            f"password2 = {salt}\n"
            "filename_encryption = standard\n"
            "directory_name_encryption = true\n",
            encoding="utf-8",
        )
        config.chmod(0o600)
        subprocess.run(
            [str(rclone), "copy", str(source), "s3-crypt:", "--config", str(config)],
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": directory,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            },
            capture_output=True,
            text=True,
            check=True,
        )
