'use strict';
// loopback.js — name resolution for the conformance test: every name under
// .localhost resolves to 127.0.0.1 (RFC 6761; libcurl, and so the reencrypt
// binary, does the same by itself), loopback addresses stay as they are, and
// any other name is refused.  So the key vault test double can be served as
// https://localvault.vault.localhost:PORT, a vault under a parent domain as
// the service's are, and nothing the SDK might try (instance discovery at
// login.microsoftonline.com, say) can leave the machine.
//
// Resolution only: the SDK's requests, TLS and certificate checks are its
// own, unchanged.  Load it before the SDK (node --require ./loopback.js).

const dns = require('node:dns');
const net = require('node:net');

function loopbackAddress(hostname) {
  const host = String(hostname).toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return '127.0.0.1';
  if (net.isIPv4(host) && host.startsWith('127.')) return host;
  if (host === '::1' || host === '[::1]') return '::1';
  return null;
}

function lookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  } else if (typeof options === 'number') {
    options = { family: options };
  }
  const address = loopbackAddress(hostname);
  if (address === null) {
    const error = new Error(`loopback.js: ${hostname} is not on this machine; not resolved`);
    error.code = 'ENOTFOUND';
    error.hostname = hostname;
    process.nextTick(callback, error);
    return;
  }
  const family = net.isIP(address);
  if (options && options.all) {
    process.nextTick(callback, null, [{ address, family }]);
  } else {
    process.nextTick(callback, null, address, family);
  }
}

dns.lookup = lookup;
dns.promises.lookup = (hostname, options) =>
  new Promise((resolve, reject) => {
    lookup(hostname, options || {}, (error, address, family) => {
      if (error) reject(error);
      else resolve(Array.isArray(address) ? address : { address, family });
    });
  });

module.exports = { loopbackAddress };
