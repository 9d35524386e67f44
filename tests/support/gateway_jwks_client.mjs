// A gateway's check of the mux's inbound JWTs, for tests: the real jose (pinned in
// package.json at the fork's version, 6.1.3) used as the fork's gateway uses it
// (h4x3rotab/openclaw 714b97af, src/gateway/mux-jwt.ts): one createRemoteJWKSet per
// JWKS URL, kept for the life of the process, with a 5 s fetch timeout and a 5-minute
// cooldown (lines 22-23, 46-57), and jwtVerify with the inbound audience, the tenant's
// openclawId as subject and 60 s of clock tolerance (lines 63-73).
//
// Reads one JSON request a line ({baseUrl, token, openclawId}) and answers each with
// one JSON line: {ok: true} or {ok: false, code}.
import { createInterface } from "node:readline";
import { createRemoteJWKSet, jwtVerify } from "jose";

const remoteSets = new Map();

function remoteSet(baseUrl) {
  const url = `${baseUrl.replace(/\/+$/, "")}/.well-known/jwks.json`;
  if (!remoteSets.has(url)) {
    remoteSets.set(
      url,
      createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000, cooldownDuration: 300_000 }),
    );
  }
  return remoteSets.get(url);
}

async function check({ baseUrl, token, openclawId }) {
  try {
    await jwtVerify(token, remoteSet(baseUrl), {
      audience: "openclaw-mux-inbound",
      subject: openclawId,
      clockTolerance: 60,
    });
    return { ok: true };
  } catch (error) {
    return { ok: false, code: error.code ?? String(error) };
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  process.stdout.write(`${JSON.stringify(await check(JSON.parse(line)))}\n`);
}
