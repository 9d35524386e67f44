// Network guard for the OpenClaw oracle: loaded into every Node process of a test run
// with NODE_OPTIONS=--require, so child Node processes carry it too.
//
// It refuses, and records, every attempt to reach anything but loopback:
// - TCP and TLS connects (net.Socket.prototype.connect: net.connect, tls.connect, http,
//   https, undici's fetch and WebSocket clients all end there);
// - host name lookups (dns.lookup, dns.promises.lookup, the dns resolvers) for any name
//   but localhost;
// - UDP sends and multicast joins (dgram: mDNS/Bonjour discovery, plain DNS).
// Each refused attempt is appended as one JSON line to the file named by
// OPENCLAW_NETWORK_GUARD_LOG; a refused TCP connect fails like an unreachable host
// (ECONNREFUSED), a refused lookup like an unknown name (ENOTFOUND).
"use strict";

const fs = require("node:fs");
const net = require("node:net");
const dns = require("node:dns");
const dgram = require("node:dgram");
const { syncBuiltinESMExports } = require("node:module");

const logPath = process.env.OPENCLAW_NETWORK_GUARD_LOG;
if (!logPath) {
  throw new Error("network_guard.cjs: OPENCLAW_NETWORK_GUARD_LOG is not set");
}

function record(kind, target) {
  const line = JSON.stringify({ kind, target: String(target), pid: process.pid });
  fs.appendFileSync(logPath, `${line}\n`);
}

function isLoopbackHost(host) {
  if (host === undefined || host === null || host === "") {
    return true; // Node's default host for connect is localhost
  }
  const name = String(host).toLowerCase().replace(/^\[|\]$/g, "");
  if (name === "localhost" || name.endsWith(".localhost")) {
    return true;
  }
  if (net.isIPv4(name)) {
    return name.startsWith("127.");
  }
  if (net.isIPv6(name)) {
    return name === "::1" || /^::ffff:127\./.test(name);
  }
  return false;
}

// --- TCP / TLS -------------------------------------------------------------------------
const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  // net.connect hands over one pre-normalised array; direct callers pass
  // (options[, cb]), (port[, host][, cb]) or (path[, cb]).
  let options = args[0];
  if (Array.isArray(options)) {
    options = options[0];
  }
  if (options === null || typeof options !== "object") {
    options =
      typeof options === "string" && Number.isNaN(Number(options))
        ? { path: options }
        : { port: options, host: typeof args[1] === "string" ? args[1] : undefined };
  }
  if (options.path === undefined && !isLoopbackHost(options.host)) {
    record("tcp", `${options.host}:${options.port}`);
    const error = new Error(`network guard: connect to ${options.host} refused`);
    error.code = "ECONNREFUSED";
    process.nextTick(() => this.destroy(error));
    return this;
  }
  return originalConnect.apply(this, args);
};

// --- DNS -------------------------------------------------------------------------------
function notFound(name) {
  const error = new Error(`network guard: lookup of ${name} refused`);
  error.code = "ENOTFOUND";
  error.hostname = name;
  return error;
}

const originalLookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, options, callback) {
  if (!isLoopbackHost(hostname) && !net.isIP(String(hostname))) {
    record("dns", hostname);
    const cb = typeof options === "function" ? options : callback;
    process.nextTick(() => cb(notFound(hostname)));
    return {};
  }
  return originalLookup.call(this, hostname, options, callback);
};

const originalPromiseLookup = dns.promises.lookup;
dns.promises.lookup = async function guardedPromiseLookup(hostname, options) {
  if (!isLoopbackHost(hostname) && !net.isIP(String(hostname))) {
    record("dns", hostname);
    throw notFound(hostname);
  }
  return originalPromiseLookup.call(this, hostname, options);
};

// Resolvers ask a DNS server directly: every such query leaves the machine.
for (const target of [dns, dns.promises, dns.Resolver.prototype, dns.promises.Resolver.prototype]) {
  for (const name of Object.keys(target)) {
    if (!/^resolve/.test(name) || typeof target[name] !== "function") {
      continue;
    }
    const isPromise = target === dns.promises || target === dns.promises.Resolver.prototype;
    target[name] = function guardedResolve(hostname, ...rest) {
      record("dns", hostname);
      if (isPromise) {
        return Promise.reject(notFound(hostname));
      }
      const cb = rest.reverse().find((arg) => typeof arg === "function");
      process.nextTick(() => cb && cb(notFound(hostname)));
      return undefined;
    };
  }
}

// --- UDP -------------------------------------------------------------------------------
const originalSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function guardedSend(...args) {
  const address = args.find((arg, index) => index > 0 && typeof arg === "string");
  if (address !== undefined && !isLoopbackHost(address)) {
    record("udp", address);
    const cb = args.find((arg) => typeof arg === "function");
    if (cb) {
      process.nextTick(() => cb(null, 0));
    }
    return undefined;
  }
  return originalSend.apply(this, args);
};
dgram.Socket.prototype.addMembership = function guardedAddMembership(group) {
  record("udp-multicast", group);
};

syncBuiltinESMExports();
