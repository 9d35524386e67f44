"""The installed Control UI's own code takes the gateway token from our dashboardUrl.

The Control UI is one bundled script (dist/control-ui/assets/index-*.js). Its function
that reads the login parameters from the address bar (the one starting with
`if(!window.location.search&&!window.location.hash)return;`) is cut out of the bundle
and run in Node with the dashboard URL as `window.location`. It saves the token into the
UI settings through one helper, stubbed here to record what it is given.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.oracle.conftest import TenantRun

RUN_URL_READER = r"""
const fs = require("node:fs");
const vm = require("node:vm");
const bundlePath = process.argv[1];
const dashboardUrl = fs.readFileSync(0, "utf8").trim();
const source = fs.readFileSync(bundlePath, "utf8");
const head = new RegExp(
  String.raw`function (\w+)\((\w)\)\{` +
    String.raw`if\(!window\.location\.search&&!window\.location\.hash\)return;`,
);
const found = head.exec(source);
if (!found) throw new Error("URL reader not found in the Control UI bundle");
let depth = 0;
let end = source.indexOf("{", found.index);
for (; end < source.length; end += 1) {
  if (source[end] === "{") depth += 1;
  if (source[end] === "}" && --depth === 0) break;
}
const reader = source.slice(found.index, end + 1);
const saver = /(\w+)\(\w,\{\.\.\.\w\.settings,token:/.exec(reader);
if (!saver) throw new Error("settings saver not found in the URL reader");
const location = new URL(dashboardUrl);
const context = {
  URL,
  URLSearchParams,
  replaced: null,
  window: { location, history: { replaceState: (_s, _t, next) => { context.replaced = next; } } },
};
vm.createContext(context);
vm.runInContext(
  `${reader}\nfunction ${saver[1]}(state, next) { state.settings = next; }\n` +
    `const state = { settings: { token: "" } };\n${found[1]}(state);\n` +
    `result = { token: state.settings.token, replaced };`,
  context,
);
console.log(JSON.stringify(context.result));
"""


def _control_ui_reads(oracle_dir: Path, dashboard_url: str) -> dict:
    assets = oracle_dir / "node_modules" / "openclaw" / "dist" / "control-ui" / "assets"
    (bundle,) = assets.glob("index-*.js")
    # The URL carries the token: it goes in on stdin, never in argv.
    completed = subprocess.run(
        [str(oracle_dir / "node" / "bin" / "node"), "-e", RUN_URL_READER, str(bundle)],
        input=dashboard_url,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_control_ui_logs_in_with_the_token_of_our_dashboard_url(
    oracle_dir: Path, tenant_run: TenantRun
) -> None:
    read = _control_ui_reads(oracle_dir, tenant_run.dashboard_url)
    assert read["token"] == tenant_run.gateway_token
    # ...and strips it from the address bar, leaving the bare dashboard.
    assert tenant_run.gateway_token not in read["replaced"]
    assert read["replaced"].rstrip("/") == tenant_run.dashboard_url.split("#")[0].rstrip("/")


def test_dashboard_url_keeps_the_token_in_the_fragment(tenant_run: TenantRun) -> None:
    # The fragment is never sent to the gateway or any proxy in front of it.
    base, _, fragment = tenant_run.dashboard_url.partition("#")
    assert base.endswith("-18789.dstack-pha-test.phala.network/")
    assert fragment == f"token={tenant_run.gateway_token}"


@pytest.mark.parametrize("form", ["?token=", "/#token="])
def test_reader_check_tells_a_url_with_the_token_from_one_without(
    oracle_dir: Path, form: str
) -> None:
    assert _control_ui_reads(oracle_dir, f"https://a-18789.b{form}tok123")["token"] == "tok123"
    assert _control_ui_reads(oracle_dir, "https://a-18789.b/#other=tok123")["token"] == ""
