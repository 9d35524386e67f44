"""Stand-in for `pulumi-resource-cloudflare` 6.17.0, limited to what the program uses.

Faithful to the bridged provider (v6.17.0 over terraform-provider-cloudflare v5.19.1) as
recorded in the engine build facts, for:
- the permission-group lookup invoke, `getAccountApiTokenPermissionGroupsList`
  (`GET /accounts/{a}/tokens/permission_groups?name=`, results `{id, name, scopes}`);
- `R2Bucket`: `jurisdiction` defaults to `default` and `storageClass` to `Standard`;
  a change of account, name, jurisdiction or location replaces, of storage class updates
  (`PATCH` with `cf-r2-storage-class`); the `cf-r2-jurisdiction` header on every call;
  the id is the bucket name; a 404 on refresh drops the bucket from state;
- `AccountToken`: `resources` is sent as a JSON object and kept as the text the API
  answers with (so a program that sends other text sees a diff on refresh); `value`
  comes only from create, is secret, and is kept from state afterwards; a change of
  account replaces, anything else is a `PUT` of the full body; a 404, `expired` or
  `revoked` on refresh drops the token;
- the client: base URL from `cloudflare:baseUrl` or `CLOUDFLARE_BASE_URL` (path prefix
  kept), `Authorization: Bearer` with an `apiToken` that must match
  `^[0-9A-Za-z_-]{40,80}$`, nothing called at configure time; 408, 409, 429 and 5xx
  retried up to 10 times with exponential backoff (0.5 s doubling, at most 8 s,
  `Retry-After` honoured) unless the reply says `x-should-retry: false`; other errors
  fail with the method, URL, status and the API's error body.

`OPENCLAW_CF_STANDIN_BACKOFF_SCALE` (tests only) multiplies every backoff, so a test of
ten retries does not wait a minute. Not implemented: any other resource or invoke.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the launcher the harness writes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2

from standins.plugin_rpc import (
    UNKNOWN,
    StandinProvider,
    contains_unknown,
    reveal,
    secret,
    serve_provider,
    to_dict,
    to_struct,
)

PROVIDER_VERSION = "6.17.0"
BUCKET_TYPE = "cloudflare:index/r2Bucket:R2Bucket"
TOKEN_TYPE = "cloudflare:index/accountToken:AccountToken"
GROUPS_INVOKE = (
    "cloudflare:index/getAccountApiTokenPermissionGroupsList:getAccountApiTokenPermissionGroupsList"
)
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4/"
API_TOKEN_PATTERN = re.compile(r"^[0-9A-Za-z_-]{40,80}$")
RETRY_STATUSES = {408, 409, 429} | set(range(500, 600))
MAX_RETRIES = 10
BUCKET_REPLACES = ("accountId", "name", "jurisdiction", "location")
BUCKET_DEFAULTS = {"jurisdiction": "default", "storageClass": "Standard"}
TOKEN_REPLACES = ("accountId",)
TOKEN_INPUTS = ("accountId", "name", "policies", "condition", "expiresOn", "notBefore", "status")


class ApiError(Exception):
    pass


class CloudflareClient:
    def __init__(self, base_url: str, api_token: str) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.api_token = api_token
        self.backoff_scale = float(os.environ.get("OPENCLAW_CF_STANDIN_BACKOFF_SCALE", "1"))

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, result) for 2xx and 404; any other error after retries raises."""
        url = self.base_url + path.lstrip("/")
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(MAX_RETRIES + 1):
            request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
            request.add_header("Authorization", f"Bearer {self.api_token}")
            request.add_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                request.add_header(name, value)
            try:
                with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310
                    return reply.status, json.loads(reply.read() or b"{}").get("result")
            except urllib.error.HTTPError as error:
                text = error.read().decode(errors="replace")
                retry = error.code in RETRY_STATUSES and (
                    error.headers.get("x-should-retry", "").lower() != "false"
                )
                if error.code == 404 and method == "GET":
                    return 404, None
                if not retry or attempt == MAX_RETRIES:
                    raise ApiError(
                        f'{method} "{url}": {error.code} {error.reason} {text}'.strip()
                    ) from None
                time.sleep(self._backoff(attempt, error.headers.get("Retry-After")))
            except urllib.error.URLError as error:
                if attempt == MAX_RETRIES:
                    raise ApiError(f'{method} "{url}": {error.reason}') from None
                time.sleep(self._backoff(attempt, None))
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.isdigit():
            return int(retry_after) * self.backoff_scale
        return min(0.5 * 2**attempt, 8.0) * self.backoff_scale


def jurisdiction_header(props: dict[str, Any]) -> dict[str, str]:
    return {"cf-r2-jurisdiction": props.get("jurisdiction") or "default"}


def changed(olds: dict[str, Any], news: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [
        name
        for name in names
        if name in news
        and (contains_unknown(news[name]) or reveal(olds.get(name)) != reveal(news[name]))
    ]


def token_body(inputs: dict[str, Any]) -> dict[str, Any]:
    plain = reveal(inputs)
    body: dict[str, Any] = {
        "name": plain["name"],
        "policies": [
            {
                "effect": policy["effect"],
                "permission_groups": [{"id": g["id"]} for g in policy["permissionGroups"]],
                "resources": json.loads(policy["resources"]),
            }
            for policy in plain["policies"]
        ],
    }
    for key, wire in (
        ("condition", "condition"),
        ("expiresOn", "expires_on"),
        ("notBefore", "not_before"),
        ("status", "status"),
    ):
        if plain.get(key) is not None:
            body[wire] = plain[key]
    return body


def token_state(inputs: dict[str, Any], result: dict[str, Any], value: Any) -> dict[str, Any]:
    policies = [
        {
            "effect": policy["effect"],
            "permissionGroups": [{"id": g["id"]} for g in policy["permission_groups"]],
            # The API's own text for the resources object, compact, as the provider keeps it.
            "resources": json.dumps(policy["resources"], separators=(",", ":")),
        }
        for policy in result["policies"]
    ]
    return {
        **{k: v for k, v in inputs.items() if k in TOKEN_INPUTS},
        "name": result["name"],
        "policies": policies,
        "status": result["status"],
        "issuedOn": result.get("issued_on"),
        "modifiedOn": result.get("modified_on"),
        "lastUsedOn": result.get("last_used_on"),
        "value": value,
    }


def bucket_state(inputs: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return {
        **inputs,
        "name": result["name"],
        "jurisdiction": result.get("jurisdiction") or inputs.get("jurisdiction"),
        "location": (result.get("location") or "").lower() or inputs.get("location"),
        "storageClass": result.get("storage_class"),
        "creationDate": result.get("creation_date"),
    }


class CloudflareProvider(StandinProvider):
    name = "cloudflare"
    version = PROVIDER_VERSION

    def __init__(self) -> None:
        self.client: CloudflareClient | None = None

    def CheckConfig(self, request: Any, context: Any) -> Any:
        news = reveal(to_dict(request.news))
        token = news.get("apiToken") or os.environ.get("CLOUDFLARE_API_TOKEN", "")
        failures = []
        if token and token != UNKNOWN and not API_TOKEN_PATTERN.match(token):
            failures.append(
                provider_pb2.CheckFailure(
                    property="apiToken",
                    reason="API tokens must be 40-80 characters of [0-9A-Za-z_-]",
                )
            )
        return provider_pb2.CheckResponse(inputs=request.news, failures=failures)

    def Configure(self, request: Any, context: Any) -> Any:
        args = reveal(to_dict(request.args)) if request.HasField("args") else {}
        variables = dict(request.variables)
        base_url = (
            args.get("baseUrl")
            or variables.get("cloudflare:config:baseUrl")
            or os.environ.get("CLOUDFLARE_BASE_URL")
            or DEFAULT_BASE_URL
        )
        token = (
            args.get("apiToken")
            or variables.get("cloudflare:config:apiToken")
            or os.environ.get("CLOUDFLARE_API_TOKEN", "")
        )
        self.client = CloudflareClient(base_url, token)
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=True
        )

    def _api(self, context: Any) -> CloudflareClient:
        if self.client is None or not self.client.api_token:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no Cloudflare credentials: set cloudflare:apiToken or CLOUDFLARE_API_TOKEN",
            )
        assert self.client is not None
        return self.client

    def _call(self, context: Any, what: str, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        try:
            return self._api(context).call(*args, **kwargs)
        except ApiError as error:
            context.abort(grpc.StatusCode.UNKNOWN, f"{what}: {error}")
            raise  # unreachable: abort raises

    # ----- invoke ----------------------------------------------------------------------

    def Invoke(self, request: Any, context: Any) -> Any:
        if request.tok != GROUPS_INVOKE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.tok} is not implemented")
        args = reveal(to_dict(request.args))
        account = args.get("accountId", "")
        query = ""
        if args.get("name"):
            query = "?name=" + urllib.parse.quote_plus(args["name"])
        _, results = self._call(
            context,
            "listing token permission groups",
            "GET",
            f"accounts/{account}/tokens/permission_groups{query}",
        )
        output = {
            "accountId": account,
            "id": account,
            "results": [
                {"id": g["id"], "name": g["name"], "scopes": g.get("scopes", [])}
                for g in results or []
            ],
        }
        for key in ("name", "scope", "maxItems"):
            if key in args:
                output[key] = args[key]
        return provider_pb2.InvokeResponse(**{"return": to_struct(output)})

    # ----- resources -------------------------------------------------------------------

    def Check(self, request: Any, context: Any) -> Any:
        news = to_dict(request.news)
        failures: list[Any] = []
        if request.type == BUCKET_TYPE:
            news = {**BUCKET_DEFAULTS, **news}
        elif request.type == TOKEN_TYPE:
            for index, policy in enumerate(reveal(news.get("policies")) or []):
                resources = policy.get("resources") if isinstance(policy, dict) else None
                if resources in (None, UNKNOWN):
                    continue
                try:
                    json.loads(resources)
                except (TypeError, ValueError):
                    failures.append(
                        provider_pb2.CheckFailure(
                            property=f"policies[{index}].resources", reason="must be JSON"
                        )
                    )
        else:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.type} is not implemented")
        return provider_pb2.CheckResponse(inputs=to_struct(news), failures=failures)

    def Diff(self, request: Any, context: Any) -> Any:
        olds, news = to_dict(request.olds), to_dict(request.news)
        if request.type == BUCKET_TYPE:
            diffs = changed(olds, news, (*BUCKET_REPLACES, "storageClass"))
            replaces = [name for name in diffs if name in BUCKET_REPLACES]
        else:
            diffs = changed(olds, news, TOKEN_INPUTS)
            replaces = [name for name in diffs if name in TOKEN_REPLACES]
        if not diffs:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME,
            diffs=diffs,
            replaces=replaces,
            detailedDiff={
                name: provider_pb2.PropertyDiff(
                    kind=provider_pb2.PropertyDiff.UPDATE_REPLACE
                    if name in replaces
                    else provider_pb2.PropertyDiff.UPDATE,
                    inputDiff=True,
                )
                for name in diffs
            },
            hasDetailedDiff=True,
        )

    def Create(self, request: Any, context: Any) -> Any:
        inputs = to_dict(request.properties)
        plain = reveal(inputs)
        if request.type == BUCKET_TYPE:
            if request.preview:
                state = {**inputs, "creationDate": UNKNOWN}
                state.setdefault("location", UNKNOWN)
                return provider_pb2.CreateResponse(id="", properties=to_struct(state))
            body = {"name": plain["name"]}
            if plain.get("location"):
                body["locationHint"] = plain["location"]
            if plain.get("storageClass"):
                body["storageClass"] = plain["storageClass"]
            _, result = self._call(
                context,
                f"creating R2 bucket {plain['name']!r}",
                "POST",
                f"accounts/{plain['accountId']}/r2/buckets",
                body,
                jurisdiction_header(plain),
            )
            state = bucket_state(inputs, result)
            return provider_pb2.CreateResponse(id=result["name"], properties=to_struct(state))
        if request.preview:
            state = {**inputs}
            for key in ("status", "issuedOn", "modifiedOn", "lastUsedOn", "value"):
                state[key] = UNKNOWN
            return provider_pb2.CreateResponse(id="", properties=to_struct(state))
        _, result = self._call(
            context,
            f"creating account token {plain['name']!r}",
            "POST",
            f"accounts/{plain['accountId']}/tokens",
            token_body(inputs),
        )
        state = token_state(inputs, result, secret(result["value"]))
        return provider_pb2.CreateResponse(id=result["id"], properties=to_struct(state))

    def Read(self, request: Any, context: Any) -> Any:
        props = to_dict(request.properties)
        inputs = to_dict(request.inputs)
        plain = reveal(props) or reveal(inputs)
        account = plain.get("accountId", "")
        if request.type == BUCKET_TYPE:
            status, result = self._call(
                context,
                f"reading R2 bucket {request.id!r}",
                "GET",
                f"accounts/{account}/r2/buckets/{request.id}",
                headers=jurisdiction_header(plain),
            )
            if status == 404:
                return provider_pb2.ReadResponse(id="")
            state = bucket_state(props, result)
            return provider_pb2.ReadResponse(
                id=request.id, properties=to_struct(state), inputs=request.inputs
            )
        status, result = self._call(
            context,
            f"reading account token {request.id!r}",
            "GET",
            f"accounts/{account}/tokens/{request.id}",
        )
        if status == 404 or result.get("status") in ("expired", "revoked"):
            return provider_pb2.ReadResponse(id="")
        state = token_state(props, result, props.get("value"))
        return provider_pb2.ReadResponse(
            id=request.id, properties=to_struct(state), inputs=request.inputs
        )

    def Update(self, request: Any, context: Any) -> Any:
        olds, news = to_dict(request.olds), to_dict(request.news)
        plain = reveal(news)
        if request.type == BUCKET_TYPE:
            if request.preview:
                return provider_pb2.UpdateResponse(properties=to_struct({**olds, **news}))
            _, result = self._call(
                context,
                f"updating R2 bucket {plain['name']!r}",
                "PATCH",
                f"accounts/{plain['accountId']}/r2/buckets/{request.id}",
                headers={
                    **jurisdiction_header(plain),
                    "cf-r2-storage-class": plain.get("storageClass") or "Standard",
                },
            )
            state = bucket_state(olds | news, result)
            return provider_pb2.UpdateResponse(properties=to_struct(state))
        if request.preview:
            state = {**olds, **news, "modifiedOn": UNKNOWN}
            return provider_pb2.UpdateResponse(properties=to_struct(state))
        _, result = self._call(
            context,
            f"updating account token {plain['name']!r}",
            "PUT",
            f"accounts/{plain['accountId']}/tokens/{request.id}",
            token_body(news),
        )
        state = token_state(news, result, olds.get("value"))
        return provider_pb2.UpdateResponse(properties=to_struct(state))

    def Delete(self, request: Any, context: Any) -> Any:
        plain = reveal(to_dict(request.properties))
        account = plain.get("accountId", "")
        if request.type == BUCKET_TYPE:
            self._call(
                context,
                f"deleting R2 bucket {request.id!r}",
                "DELETE",
                f"accounts/{account}/r2/buckets/{request.id}",
                headers=jurisdiction_header(plain),
            )
        else:
            self._call(
                context,
                f"deleting account token {request.id!r}",
                "DELETE",
                f"accounts/{account}/tokens/{request.id}",
            )
        return empty_pb2.Empty()


def main() -> int:
    provider = CloudflareProvider()
    serve_provider(provider)
    return 0


if __name__ == "__main__":
    sys.exit(main())
