"""Stand-in for `pulumi-resource-cloudflare` 6.17.0, limited to what the program uses.

The real provider is pulumi/pulumi-cloudflare v6.17.0 (commit 6052b720) bridging
cloudflare/terraform-provider-cloudflare v5.19.1 (commit b2277b8, "TF" below), whose
HTTP client is cloudflare/cloudflare-go v6.10.0 ("CFGO"). Each behaviour names its
source beside the code; standins/FIDELITY.md lists them with the test that pins each:
- the permission-group lookup invoke, `getAccountApiTokenPermissionGroupsList`:
  `GET /accounts/{a}/tokens/permission_groups` with the `name` and `scope` filters;
- `R2Bucket`: `name` and `accountId` replace, a configured `location` replaces;
  `jurisdiction` and `storageClass` update in place, with a PATCH of the bucket name
  under the *new* `cf-r2-jurisdiction` header (so a changed jurisdiction PATCHes a
  bucket that is not the one in state); a 404 on refresh drops the bucket;
- `AccountToken`: `resources` sent as the program's text compacted the way Go does and
  kept as the API's raw bytes; `value` only from create; `accountId` replaces, anything
  else is a PUT of the full body; a 404, `expired` or `revoked (exposed)` on refresh
  drops the token;
- the client: base URL from `cloudflare:baseUrl` or `CLOUDFLARE_BASE_URL`; the
  `apiToken` config (not the environment variable) must match `^[0-9A-Za-z_-]{40,80}$`;
  10 retries on 408/409/429/5xx and transport errors, `x-should-retry` taking
  precedence, waiting as `Retry-After-Ms` or `Retry-After` say, else 2 s doubling to
  30 s less up to a quarter of jitter.

`OPENCLAW_CF_STANDIN_BACKOFF_SCALE` (tests only) multiplies every wait, so a test of ten
retries does not take minutes. Not implemented: any other resource or invoke, import.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the launcher the harness writes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from standins.bare_protocol import use_bare_protocol_packages

    use_bare_protocol_packages()

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2

from standins.json_text import RawJsonError, go_compact, raw_policy_resources, with_raw_values
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
# TF internal/provider.go:324-333: a validator on the `api_token` attribute only;
# Configure (lines 373-377) falls back to CLOUDFLARE_API_TOKEN without validating it,
# and pulumi-cloudflare provider/resources.go:85-87 maps no env var onto the config.
API_TOKEN_PATTERN = re.compile(r"^[0-9A-Za-z\-_]{40,80}$")
API_TOKEN_MESSAGE = (
    "Attribute api_token API tokens must only contain characters a-z, A-Z, 0-9, "
    "hyphens and underscores"
)
# CFGO internal/requestconfig/requestconfig.go:172 (MaxRetries: 10) and 287-290.
MAX_RETRIES = 10
RETRY_STATUSES = frozenset({408, 409, 429})
BASE_DELAY_SECONDS = 2.0  # requestconfig.go:393
MAX_DELAY_SECONDS = 30.0  # requestconfig.go:391
# TF r2_bucket/schema.go:64-73 (RequiresReplace on name and account_id), 74-92
# (location: RequiresReplaceIfConfigured), 93-114 (jurisdiction and storage_class: none).
BUCKET_REPLACES = ("accountId", "name")
BUCKET_UPDATES = ("jurisdiction", "storageClass")
BUCKET_DEFAULTS = {"jurisdiction": "default", "storageClass": "Standard"}
# TF account_token/schema.go:61-64: only account_id requires replacement.
TOKEN_REPLACES = ("accountId",)
TOKEN_INPUTS = ("accountId", "name", "policies", "condition", "expiresOn", "notBefore", "status")
# TF account_token/resource.go:186-198: these statuses read as a token that is gone.
GONE_TOKEN_STATUSES = ("expired", "revoked (exposed)")


# Go's http.StatusText, which apierror.go's message uses.
_STATUS_TEXT = {status.value: status.phrase for status in HTTPStatus}


class ApiError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reply:
    status: int
    text: str  # the raw body

    @property
    def result(self) -> Any:
        return json.loads(self.text or "{}").get("result")


def retry_delay(headers: Any, retry_count: int, now: datetime | None = None) -> float:
    """Seconds before the next attempt (CFGO requestconfig.go:383-401, retryDelay, and
    293-346, parseRetryAfterHeader): Retry-After-Ms, then Retry-After as seconds or an
    HTTP date, never negative and not capped; else 2 s * 2^n, at most 30 s, less a
    random quarter."""
    for header, unit in (("Retry-After-Ms", 0.001), ("Retry-After", 1.0)):
        value = headers.get(header) if headers is not None else None
        if not value:
            continue
        try:
            return max(0.0, float(value) * unit)
        except ValueError:
            pass
        if header == "Retry-After":
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    delay = min(BASE_DELAY_SECONDS * 2**retry_count, MAX_DELAY_SECONDS)
    return delay - random.uniform(0, delay / 4)  # noqa: S311 - jitter, not a secret


def should_retry(status: int | None, headers: Any) -> bool:
    """CFGO requestconfig.go:255-291: transport errors (status None) retry; an explicit
    x-should-retry wins over the status; else 408, 409, 429 and 5xx."""
    if status is None:
        return True
    hint = headers.get("x-should-retry") if headers is not None else None
    if hint == "true":
        return True
    if hint == "false":
        return False
    return status in RETRY_STATUSES or status >= HTTPStatus.INTERNAL_SERVER_ERROR


class CloudflareClient:
    def __init__(self, base_url: str, api_token: str) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.api_token = api_token
        self.backoff_scale = float(os.environ.get("OPENCLAW_CF_STANDIN_BACKOFF_SCALE", "1"))

    def call(
        self,
        method: str,
        path: str,
        body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """The reply for 2xx, and for a GET's 404 (Read drops the resource on it); any
        other error status, after retries, raises with cloudflare-go's wording
        (internal/apierror/apierror.go:40-43: METHOD "URL": CODE Status Body)."""
        url = self.base_url + path.lstrip("/")
        data = body.encode() if body is not None else None
        for attempt in range(MAX_RETRIES + 1):
            request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
            request.add_header("Authorization", f"Bearer {self.api_token}")
            request.add_header("Content-Type", "application/json")
            request.add_header("Accept", "application/json")
            request.add_header("X-Stainless-Retry-Count", str(attempt))
            for name, value in (headers or {}).items():
                request.add_header(name, value)
            try:
                with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310
                    return Reply(reply.status, reply.read().decode())
            except urllib.error.HTTPError as error:
                text = error.read().decode(errors="replace")
                if error.code == HTTPStatus.NOT_FOUND and method == "GET":
                    return Reply(error.code, text)
                if not should_retry(error.code, error.headers) or attempt == MAX_RETRIES:
                    reason = _STATUS_TEXT.get(error.code, "")
                    raise ApiError(
                        f'{method} "{url}": {error.code} {reason} {text}'.strip(), error.code
                    ) from None
                wait = retry_delay(error.headers, attempt)
            except urllib.error.URLError as error:
                if attempt == MAX_RETRIES:
                    raise ApiError(f'{method} "{url}": {error.reason}') from None
                wait = retry_delay(None, attempt)
            time.sleep(wait * self.backoff_scale)
        raise AssertionError("unreachable")


def jurisdiction_header(props: dict[str, Any]) -> dict[str, str]:
    # TF r2_bucket/resource.go:88, 134, 172, 212: the header on every bucket call.
    return {"cf-r2-jurisdiction": props.get("jurisdiction") or "default"}


def changed(olds: dict[str, Any], news: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    # The bridge compares plain values: secretness is not a Terraform notion.
    return [
        name
        for name in names
        if name in news
        and (contains_unknown(news[name]) or reveal(olds.get(name)) != reveal(news[name]))
    ]


def token_body(inputs: dict[str, Any]) -> str:
    """The request body, as TF account_token/custom.go:12-45 (MarshalCustom) builds it:
    each policy's `resources` string placed as raw JSON, which json.Marshal compacts."""
    plain = reveal(inputs)
    raw: dict[str, str] = {}
    policies = []
    for index, policy in enumerate(plain["policies"]):
        placeholder = f"\x00raw-resources-{index}\x00"
        try:
            raw[placeholder] = go_compact(policy["resources"])
        except (RawJsonError, TypeError) as error:
            raise ApiError(f"failed to serialize http request: {error}") from None
        policies.append(
            {
                "effect": policy["effect"],
                "permission_groups": [{"id": g["id"]} for g in policy["permissionGroups"]],
                "resources": placeholder,
            }
        )
    body: dict[str, Any] = {"name": plain["name"], "policies": policies}
    for key, wire in (
        ("condition", "condition"),
        ("expiresOn", "expires_on"),
        ("notBefore", "not_before"),
        ("status", "status"),
    ):
        if plain.get(key) is not None:
            body[wire] = plain[key]
    return with_raw_values(body, raw)


def token_state(inputs: dict[str, Any], reply: Reply, value: Any) -> dict[str, Any]:
    """State from a token reply; each policy's resources are the reply's raw bytes
    (TF account_token/custom.go:47-78, UnmarshalCustom)."""
    result = reply.result
    raw_resources = raw_policy_resources(reply.text, in_result=True)
    policies = [
        {
            "effect": policy["effect"],
            "permissionGroups": [{"id": g["id"]} for g in policy["permission_groups"]],
            "resources": raw_resources[index],
        }
        for index, policy in enumerate(result["policies"])
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
    """State from a bucket reply (TF r2_bucket/model.go:14-22): name, location, storage
    class and creation date as the API says; jurisdiction is `no_refresh`, so the
    planned value stays."""
    return {
        **inputs,
        "name": result["name"],
        "jurisdiction": inputs.get("jurisdiction") or "default",
        "location": result.get("location") or inputs.get("location"),
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
        token = news.get("apiToken")
        failures = []
        if isinstance(token, str) and token != UNKNOWN and not API_TOKEN_PATTERN.match(token):
            failures.append(
                provider_pb2.CheckFailure(property="apiToken", reason=API_TOKEN_MESSAGE)
            )
        return provider_pb2.CheckResponse(inputs=request.news, failures=failures)

    def Configure(self, request: Any, context: Any) -> Any:
        # TF internal/provider.go:359-377: config first, then the environment.
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

    def _call(self, context: Any, *args: Any, **kwargs: Any) -> Reply:
        try:
            return self._api(context).call(*args, **kwargs)
        except ApiError as error:
            # TF resources report every client error under this summary.
            context.abort(grpc.StatusCode.UNKNOWN, f"failed to make http request: {error}")
            raise  # unreachable: abort raises

    # ----- invoke ----------------------------------------------------------------------

    def Invoke(self, request: Any, context: Any) -> Any:
        if request.tok != GROUPS_INVOKE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.tok} is not implemented")
        args = reveal(to_dict(request.args))
        account = args.get("accountId", "")
        # TF account_api_token_permission_groups/list_data_source_model.go:19-41: `name`
        # and `scope` are query parameters (CFGO encodes them with url.Values, + for space).
        query = {key: args[key] for key in ("name", "scope") if args.get(key)}
        suffix = f"?{urllib.parse.urlencode(sorted(query.items()))}" if query else ""
        reply = self._call(context, "GET", f"accounts/{account}/tokens/permission_groups{suffix}")
        results = reply.result or []
        # list_data_source.go:65-94: at most maxItems (default 1000) results.
        max_items = int(args.get("maxItems") or 0) or 1000
        output = {
            "accountId": account,
            "id": account,
            "results": [
                {"id": g["id"], "name": g["name"], "scopes": g.get("scopes", [])}
                for g in results[:max_items]
            ],
        }
        for key in ("name", "scope", "maxItems"):
            if key in args:
                output[key] = args[key]
        return provider_pb2.InvokeResponse(**{"return": to_struct(output)})

    # ----- resources -------------------------------------------------------------------

    def Check(self, request: Any, context: Any) -> Any:
        news = to_dict(request.news)
        if request.type == BUCKET_TYPE:
            news = {**BUCKET_DEFAULTS, **news}  # schema.go:97, 113: the defaults
        elif request.type != TOKEN_TYPE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.type} is not implemented")
        return provider_pb2.CheckResponse(inputs=to_struct(news))

    def Diff(self, request: Any, context: Any) -> Any:
        olds, news = to_dict(request.olds), to_dict(request.news)
        if request.type == BUCKET_TYPE:
            diffs = changed(olds, news, (*BUCKET_REPLACES, *BUCKET_UPDATES, "location"))
            replaces = [
                name
                for name in diffs
                if name in BUCKET_REPLACES or (name == "location" and news.get("location"))
            ]
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
            # TF r2_bucket/model.go:24-32: name, locationHint, storageClass in the body.
            body: dict[str, Any] = {"name": plain["name"]}
            if plain.get("location"):
                body["locationHint"] = plain["location"]
            if plain.get("storageClass"):
                body["storageClass"] = plain["storageClass"]
            reply = self._call(
                context,
                "POST",
                f"accounts/{plain['accountId']}/r2/buckets",
                json.dumps(body, separators=(",", ":")),
                jurisdiction_header(plain),
            )
            state = bucket_state(inputs, reply.result)
            # resource.go:104: the id is the bucket name.
            return provider_pb2.CreateResponse(id=reply.result["name"], properties=to_struct(state))
        if request.preview:
            state = {**inputs}
            for key in ("status", "issuedOn", "modifiedOn", "lastUsedOn", "value"):
                state[key] = UNKNOWN
            return provider_pb2.CreateResponse(id="", properties=to_struct(state))
        body_text = self._token_body(context, inputs)
        reply = self._call(context, "POST", f"accounts/{plain['accountId']}/tokens", body_text)
        state = token_state(inputs, reply, secret(reply.result["value"]))
        return provider_pb2.CreateResponse(id=reply.result["id"], properties=to_struct(state))

    def _token_body(self, context: Any, inputs: dict[str, Any]) -> str:
        try:
            return token_body(inputs)
        except ApiError as error:
            context.abort(grpc.StatusCode.UNKNOWN, str(error))
            raise  # unreachable: abort raises

    def Read(self, request: Any, context: Any) -> Any:
        props = to_dict(request.properties)
        inputs = to_dict(request.inputs)
        plain = reveal(props) or reveal(inputs)
        account = plain.get("accountId", "")
        if request.type == BUCKET_TYPE:
            reply = self._call(
                context,
                "GET",
                f"accounts/{account}/r2/buckets/{request.id}",
                headers=jurisdiction_header(plain),
            )
            if reply.status == HTTPStatus.NOT_FOUND:  # resource.go:176-180
                return provider_pb2.ReadResponse(id="")
            state = bucket_state(props, reply.result)
            return provider_pb2.ReadResponse(
                id=request.id, properties=to_struct(state), inputs=request.inputs
            )
        reply = self._call(context, "GET", f"accounts/{account}/tokens/{request.id}")
        if reply.status == HTTPStatus.NOT_FOUND:  # account_token/resource.go:169-173
            return provider_pb2.ReadResponse(id="")
        if reply.result.get("status") in GONE_TOKEN_STATUSES:  # resource.go:186-198
            return provider_pb2.ReadResponse(id="")
        # resource.go:200: the value is kept from state (`no_refresh`).
        state = token_state(props, reply, props.get("value"))
        return provider_pb2.ReadResponse(
            id=request.id, properties=to_struct(state), inputs=request.inputs
        )

    def Update(self, request: Any, context: Any) -> Any:
        olds, news = to_dict(request.olds), to_dict(request.news)
        plain = reveal(news)
        if request.type == BUCKET_TYPE:
            if request.preview:
                return provider_pb2.UpdateResponse(properties=to_struct({**olds, **news}))
            # TF r2_bucket/resource.go:109-153: PATCH the planned name under the planned
            # jurisdiction and storage class, whatever jurisdiction the state had.
            reply = self._call(
                context,
                "PATCH",
                f"accounts/{plain['accountId']}/r2/buckets/{plain['name']}",
                headers={
                    **jurisdiction_header(plain),
                    "cf-r2-storage-class": plain.get("storageClass") or "Standard",
                },
            )
            state = bucket_state(olds | news, reply.result)
            return provider_pb2.UpdateResponse(properties=to_struct(state))
        if request.preview:
            state = {**olds, **news, "modifiedOn": UNKNOWN}
            return provider_pb2.UpdateResponse(properties=to_struct(state))
        # TF account_token/resource.go:97-146: PUT the full body, keep the value.
        body_text = self._token_body(context, news)
        reply = self._call(
            context, "PUT", f"accounts/{plain['accountId']}/tokens/{request.id}", body_text
        )
        state = token_state(news, reply, olds.get("value"))
        return provider_pb2.UpdateResponse(properties=to_struct(state))

    def Delete(self, request: Any, context: Any) -> Any:
        plain = reveal(to_dict(request.properties))
        account = plain.get("accountId", "")
        if request.type == BUCKET_TYPE:
            self._call(
                context,
                "DELETE",
                f"accounts/{account}/r2/buckets/{request.id}",
                headers=jurisdiction_header(plain),
            )
        else:
            self._call(context, "DELETE", f"accounts/{account}/tokens/{request.id}")
        return empty_pb2.Empty()


def main() -> int:
    provider = CloudflareProvider()
    serve_provider(provider)
    return 0


if __name__ == "__main__":
    sys.exit(main())
