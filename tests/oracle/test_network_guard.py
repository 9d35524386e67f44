"""The network guard the oracle runs under does catch what leaves loopback.

Without this, an empty guard log could mean a guard that never fires.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.openclaw_oracle import OracleState

PROBE = """
const net = require("node:net");
const dns = require("node:dns");
const dgram = require("node:dgram");
const done = [];
done.push(fetch("http://192.0.2.10:8080/").catch(() => {}));
done.push(fetch("https://registry.example.invalid/").catch(() => {}));
done.push(new Promise((r) => dns.resolve4("example.org", () => r())));
const local = net.createServer().listen(0, "127.0.0.1", () => {
  const socket = net.connect(local.address().port, "127.0.0.1", () => {
    console.log("loopback connected");
    socket.end();
    local.close();
  });
});
const udp = dgram.createSocket("udp4");
udp.send(Buffer.from("x"), 5353, "224.0.0.251", () => udp.close());
Promise.all(done).then(() => setTimeout(() => process.exit(0), 100));
"""


def test_guard_records_every_attempt_beyond_loopback_and_lets_loopback_through(
    oracle_dir: Path, tmp_path: Path
) -> None:
    state = OracleState(oracle_dir, tmp_path)
    node = oracle_dir / "node" / "bin" / "node"
    completed = subprocess.run(
        [str(node), "-e", PROBE],
        env=state.env(),
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "loopback connected" in completed.stdout
    contacted = {(entry["kind"], entry["target"]) for entry in state.contacted()}
    assert contacted == {
        ("tcp", "192.0.2.10:8080"),
        ("tcp", "registry.example.invalid:443"),
        ("dns", "example.org"),
        ("udp", "224.0.0.251"),
    }
