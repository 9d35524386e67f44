from __future__ import annotations

from components import urls

APP = "43069de20638d656a2d0e49fb074bee1049bc90e"
DOMAIN = "dstack-pha-prod9.phala.network"


def test_gateway_url_uses_the_app_id_and_port_18789() -> None:
    assert urls.gateway_url(APP, DOMAIN) == f"https://{APP}-18789.{DOMAIN}"


def test_dashboard_url_carries_the_token_url_encoded() -> None:
    assert (
        urls.dashboard_url(APP, DOMAIN, "a+b/c") == f"https://{APP}-18789.{DOMAIN}/#token=a%2Bb%2Fc"
    )


def test_ssh_host_uses_port_1022() -> None:
    assert urls.ssh_host(APP, DOMAIN) == f"{APP}-1022.{DOMAIN}"


def test_inbound_url_is_the_gateway_mux_path() -> None:
    assert urls.inbound_url(APP, DOMAIN) == f"https://{APP}-18789.{DOMAIN}/v1/mux/inbound"


def test_mux_urls_use_port_18891() -> None:
    assert urls.mux_base_url(APP, DOMAIN) == f"https://{APP}-18891.{DOMAIN}"
    assert urls.mux_health_url(APP, DOMAIN) == f"https://{APP}-18891.{DOMAIN}/health"


def test_phala_dashboard_link() -> None:
    assert urls.phala_dashboard_url("abc") == "https://cloud.phala.com/dashboard/cvms/abc"
