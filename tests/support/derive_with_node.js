#!/usr/bin/env node
// Independent re-derivation with Node's crypto, the same API the CVM image and
// the OpenClaw runtime call, to cross-check components/derivation.py.
//
// Input (STDIN, never argv, so keys stay out of `ps`): a JSON array of strings.
// Output (STDOUT): a JSON array with one object per input string, in order.
// Each string is used both as a tenant MASTER_KEY and as a mux master key.
//
// Labels are written out again here on purpose: a typo on the Python side must
// show up as a mismatch, not be copied over.
"use strict";

const crypto = require("node:crypto");

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

// Mirrors the image's derive_key: the key goes in as a JS string (UTF-8),
// salt '', 32 bytes out.
function hkdf(key, label) {
  return Buffer.from(crypto.hkdfSync("sha256", key, "", label, 32));
}

function ed25519FromSeed(seed) {
  const privateKey = crypto.createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = crypto.createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return { privateKey, publicRaw: spki.subarray(spki.length - 32) };
}

function derive(key) {
  const device = ed25519FromSeed(hkdf(key, "openclaw-device-identity-v1"));
  const muxJwt = ed25519FromSeed(hkdf(key, "openclaw-phala/mux-jwt-ed25519/v1"));
  return {
    gatewayToken: hkdf(key, "gateway-auth-token")
      .toString("base64")
      .replace(/[/+=]/g, "")
      .slice(0, 32),
    rcloneCryptPassword: hkdf(key, "rclone-crypt-password").toString("base64"),
    rcloneCryptSalt: hkdf(key, "rclone-crypt-salt").toString("base64"),
    openclawId: crypto.createHash("sha256").update(device.publicRaw).digest("hex"),
    devicePublicKeyB64url: device.publicRaw.toString("base64url"),
    muxRegisterKey: hkdf(key, "openclaw-phala/mux-register-key/v1").toString("base64url"),
    muxAdminToken: hkdf(key, "openclaw-phala/mux-admin-token/v1").toString("base64url"),
    muxJwtPublicKeyB64url: muxJwt.publicRaw.toString("base64url"),
    muxJwtPrivateKeyPem: muxJwt.privateKey.export({ format: "pem", type: "pkcs8" }),
  };
}

function main() {
  const chunks = [];
  process.stdin.on("data", (chunk) => chunks.push(chunk));
  process.stdin.on("end", () => {
    const keys = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) {
      // Deliberately says nothing about the input's contents.
      process.stderr.write("expected a JSON array of strings on stdin\n");
      process.exit(2);
    }
    process.stdout.write(JSON.stringify(keys.map(derive)));
  });
}

main();
