"""Nothing the sandbox runs may reach a vendor: a shell armed for production is refused,
every reason named in one pass, and a stack file's provider settings are found."""

from __future__ import annotations

from sandbox.vendor_guard import environment_problems, provider_settings, refusal


def test_a_clean_shell_or_local_endpoints_pass() -> None:
    assert environment_problems({"PATH": "/usr/bin", "HOME": "/root"}) == []
    assert (
        environment_problems(
            {
                "PHALA_CLOUD_API_PREFIX": "http://127.0.0.1:8000/api/v1",
                "CLOUDFLARE_BASE_URL": "http://localhost:9000/client/v4/",
                "PULUMI_BACKEND_URL": "file:///srv/state",
            }
        )
        == []
    )


def test_every_vendor_credential_and_remote_endpoint_is_named_in_one_pass() -> None:
    problems = environment_problems(
        {
            "PHALA_CLOUD_API_KEY": "phak_live",
            "CLOUDFLARE_API_TOKEN": "cf-token",
            "CLOUDFLARE_EMAIL": "ops@example.com",
            "PHALA_CLOUD_API_PREFIX": "https://cloud-api.phala.network/api/v1",
            "CLOUDFLARE_BASE_URL": "https://api.cloudflare.com/client/v4/",
            "PULUMI_BACKEND_URL": "s3://state-bucket",
        }
    )
    named = [problem.split(" ", 1)[0] for problem in problems]
    assert named == [
        "PHALA_CLOUD_API_KEY",
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_EMAIL",
        "PHALA_CLOUD_API_PREFIX",
        "CLOUDFLARE_BASE_URL",
        "PULUMI_BACKEND_URL",
    ]
    assert "cloud-api.phala.network" in problems[3]
    assert all("phak_live" not in problem and "cf-token" not in problem for problem in problems)


def test_a_pulumi_cloud_backend_is_refused() -> None:
    (problem,) = environment_problems({"PULUMI_BACKEND_URL": "https://api.pulumi.com"})
    assert "not a local folder" in problem


def test_the_refusal_says_how_to_run_without_them() -> None:
    message = refusal("rehearse", environment_problems({"PHALA_CLOUD_API_KEY": "x"}))
    assert "refusing to start" in message
    assert "env -u PHALA_CLOUD_API_KEY ./scripts/sandbox rehearse" in message


def test_the_cloudflare_providers_settings_in_a_stack_file_are_found() -> None:
    document = {
        "config": {
            "cloudflare:apiToken": {"secure": "v1:abc"},
            "cloudflare:baseUrl": "https://api.cloudflare.com/client/v4/",
            "openclaw-phala:muxName": "mux",
        }
    }
    assert provider_settings(document) == ["cloudflare:apiToken", "cloudflare:baseUrl"]
    assert provider_settings({}) == []
