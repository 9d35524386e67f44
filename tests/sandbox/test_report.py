"""What the sandbox prints, from its inputs alone: the calls each API got (writes listed,
reads counted), the outputs with tokens elided, and what a change did to them."""

from __future__ import annotations

from sandbox.report import calls_lines, elide_token, output_changes, outputs_lines


def test_calls_list_every_write_and_count_the_reads_between() -> None:
    entries = [
        {"method": "GET", "path": "/cvms/1", "status": 200, "cvm": "alice"},
        {"method": "GET", "path": "/cvms/1", "status": 200, "cvm": "alice"},
        {"method": "PATCH", "path": "/cvms/1", "status": 202, "cvm": "alice"},
        {"method": "GET", "path": "/cvms/1", "status": 200, "cvm": "alice"},
    ]
    lines = calls_lines("Phala", "phala", entries, [False, False, True, False])
    assert lines == [
        "Phala: 1 writes, 3 reads",
        "    ... 2 reads",
        "    PATCH  /cvms/1 -> 202  (alice)",
        "    ... 1 read",
    ]
    assert calls_lines("Cloudflare", "cloudflare", [], []) == ["Cloudflare: 0 writes, 0 reads"]


def test_tokens_are_elided_from_dashboard_urls_and_outputs() -> None:
    token = "s3cr3t-gateway-token"
    assert elide_token(f"https://a-18789.example/#token={token}") == (
        "https://a-18789.example/#token=<secret>"
    )
    outputs = {
        "tenants": {
            "alice": {
                "storageMode": "s3",
                "bucket": "openclaw-alice",
                "cvmId": "c1",
                "sshHost": "a-1022.example",
                "gatewayUrl": "https://a-18789.example",
            }
        },
        "tenantSecrets": {"alice": {"dashboardUrl": f"https://a-18789.example/#token={token}"}},
    }
    shown = "\n".join(outputs_lines(outputs))
    assert token not in shown and "#token=<secret>" in shown and "openclaw-alice" in shown
    # Without --show-secrets the secret outputs are the text "[secret]".
    assert "#token=<secret>" in "\n".join(outputs_lines({**outputs, "tenantSecrets": "[secret]"}))


def test_output_changes_name_each_changed_added_or_removed_value() -> None:
    before = {
        "tenants": {"a": {"composeHash": "1" * 64, "cvmId": "x"}},
        "tenantSecrets": "[secret]",
    }
    after = {
        "tenants": {"a": {"composeHash": "2" * 64, "cvmId": "x"}, "b": {"cvmId": "y"}},
        "tenantSecrets": "[secret]",
    }
    assert output_changes(before, after) == [
        f"  ~ tenants.a.composeHash: {'1' * 12}…{'1' * 8} -> {'2' * 12}…{'2' * 8}",
        "  + tenants.b.cvmId: y",
    ]
    assert output_changes(before, before) == ["  (no output changed)"]
