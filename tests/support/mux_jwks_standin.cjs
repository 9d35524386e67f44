// A stand-in for mux-server's JWT signing key and JWKS endpoint, for tests.
//
// It gets its key the way mux-server does (h4x3rotab/openclaw 714b97af,
// mux-server/src/runtime-jwt.ts lines 34-40: MUX_JWT_PRIVATE_KEY, trimmed, through
// createPrivateKey; a fresh Ed25519 key when unset), names it with the same key id
// (lines 29-32: the first 16 hex digits of SHA-256 over the SPKI DER) and serves the
// same JWKS document at the same path (lines 53-63 and 90; mux-server/src/server.ts
// line 6453). It also mints an inbound JWT as the mux does for a gateway (EdDSA, kid in
// the header, audience "openclaw-mux-inbound", scope "mux:inbound"), so a test can
// verify one with the gateway's own JWKS client.
//
// It listens on 127.0.0.1 only (whatever MUX_HOST says), on MUX_STANDIN_PORT or a free
// port (a restart keeps its address, as the mux's does), and prints one JSON line once
// listening; on SIGTERM it prints another and exits 0.
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

const configured = process.env.MUX_JWT_PRIVATE_KEY?.trim();
const privateKey = configured
  ? crypto.createPrivateKey(configured)
  : crypto.generateKeyPairSync("ed25519").privateKey;
const publicKey = crypto.createPublicKey(privateKey);
const spki = publicKey.export({ type: "spki", format: "der" });
const kid = crypto.createHash("sha256").update(spki).digest("hex").slice(0, 16);
const jwks = {
  keys: [{ ...publicKey.export({ format: "jwk" }), kid, use: "sig", alg: "EdDSA" }],
};

function base64url(value) {
  return Buffer.from(value).toString("base64url");
}

function inboundJwt(subject) {
  const now = Math.trunc(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid }));
  const payload = base64url(
    JSON.stringify({
      scope: "mux:inbound",
      sub: subject,
      aud: ["openclaw-mux-inbound"],
      iat: now,
      nbf: now,
      exp: now + 300,
    }),
  );
  const signature = crypto.sign(null, Buffer.from(`${header}.${payload}`), privateKey);
  return `${header}.${payload}.${base64url(signature)}`;
}

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  if (req.method === "GET" && url.pathname === "/.well-known/jwks.json") {
    sendJson(res, 200, jwks);
  } else if (req.method === "GET" && url.pathname === "/test/inbound-jwt") {
    sendJson(res, 200, { token: inboundJwt(url.searchParams.get("sub") ?? "") });
  } else {
    sendJson(res, 404, { ok: false });
  }
});

function digest(value) {
  return value === undefined ? null : crypto.createHash("sha256").update(value).digest("hex");
}

server.listen(Number(process.env.MUX_STANDIN_PORT ?? 0), "127.0.0.1", () => {
  const raw = process.env.MUX_JWT_PRIVATE_KEY;
  const report = {
    port: server.address().port,
    pid: process.pid,
    cwd: process.cwd(),
    kid,
    keyFrom: configured ? "MUX_JWT_PRIVATE_KEY" : "generated",
    // What the process was handed, without printing a key: its length and digest.
    keyLength: raw === undefined ? null : raw.length,
    keySha256: digest(raw),
    oneLineFormLeftInEnv: process.env.MUX_JWT_PRIVATE_KEY_B64 !== undefined,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
});

process.on("SIGTERM", () => {
  process.stdout.write(`${JSON.stringify({ signal: "SIGTERM" })}\n`);
  server.close(() => process.exit(0));
});
