'use strict';
// conformance.js — Microsoft's JavaScript key vault client (@azure/keyvault-keys,
// @azure/identity; versions pinned in package-lock.json) against the key vault
// test double, driven by tests/e2e/test_akv_sdk.sh.  Run with
//   node --require ./loopback.js conformance.js COMMAND ...
// and NODE_PATH naming the installed node_modules.
//
// The SDK is used as a customer would: ClientSecretCredential with the
// options a private or sovereign cloud needs (authorityHost, and
// disableInstanceDiscovery because instance discovery asks the public cloud's
// login.microsoftonline.com), KeyClient and CryptographyClient with their
// defaults, the test CA trusted through NODE_EXTRA_CA_CERTS.  Nothing in the
// SDK is patched; loopback.js only resolves *.localhost to 127.0.0.1.
//
// Environment (vaultlib.sh's vault_start sets most of it):
//   VAULT_URL AZURE_TENANT_ID AZURE_AUTHORITY_HOST
//   AZURE_CLIENT_ID AZURE_CLIENT_SECRET_FILE        the client the binary uses too
//   SDK_REMOTE_CLIENT_ID SDK_REMOTE_SECRET_FILE     a client without the get permission
//
// Commands (each prints "ok: WHAT" or "FAIL: WHAT: WHY" lines; exit 1 on any FAIL):
//   checks PREFIX      key get, version paging, api-versions, wrap/unwrap in every
//                      algorithm, the disabled key; keys named PREFIX-* (made by the test)
//   paging PREFIX      key get, version paging and api-versions only
//   retry KID          a wrap on a warm connection, then through one 429 with
//                      Retry-After: 1 (armed here with POST /_admin/faults, so that
//                      it falls on the wrap and not on a token or key read)
//   seal OUT KID ALG SEGSHIFT SIZE ENV [...]
//                      RENC v1 blobs (groups of six) of SIZE random bytes, each DEK
//                      wrapped by the SDK under KID with slot alg ALG (2, 3 or 4);
//                      each plaintext goes to OUT.plain
//   open IN OUT [...]  opens RENC v1 blobs: the akv slot unwrapped by the SDK

const fs = require('node:fs');
const https = require('node:https');
const crypto = require('node:crypto');
const { ClientSecretCredential } = require('@azure/identity');
const { KeyClient, CryptographyClient } = require('@azure/keyvault-keys');
const renc = require('./renc.js');

const SLOT_ALG = { 2: 'RSA-OAEP-256', 3: 'RSA-OAEP', 4: 'A256KW' };
const results = { passed: 0, failed: 0 };

function ok(what) {
  results.passed++;
  console.log(`ok: ${what}`);
}

function bad(what, why) {
  results.failed++;
  console.log(`FAIL: ${what}: ${why}`);
}

function expect(what, condition, detail) {
  if (condition) ok(what);
  else bad(what, detail === undefined ? 'not so' : JSON.stringify(detail));
  return condition;
}

// attempt: runs fn; a throw is a failure of WHAT, not of the whole run.
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (error) {
    bad(what, `${error.name}: ${error.statusCode || ''} ${error.code || ''} ${error.message}`);
    return undefined;
  }
}

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function credential(clientVar, secretVar) {
  // The secret is read from its file, never from the command line.
  const secret = fs.readFileSync(env(secretVar), 'utf8').replace(/\r?\n$/, '');
  return new ClientSecretCredential(env('AZURE_TENANT_ID'), env(clientVar), secret, {
    authorityHost: env('AZURE_AUTHORITY_HOST'),
    disableInstanceDiscovery: true,
  });
}

const main = credential('AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET_FILE');
let remoteCredential;
function remote() {
  remoteCredential ??= credential('SDK_REMOTE_CLIENT_ID', 'SDK_REMOTE_SECRET_FILE');
  return remoteCredential;
}

// ---- checks ------------------------------------------------------------------

async function checkGetAndPaging(prefix) {
  const vault = env('VAULT_URL');
  const client = new KeyClient(vault, main);
  // The key was created as PREFIX-Paged; the service finds names in any case
  // and answers with the stored spelling.
  const asked = `${prefix}-paged`.toUpperCase();
  const key = await attempt('getKey', () => client.getKey(asked));
  if (!key) return;
  const kidRe = new RegExp(`^${vault.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/keys/${prefix}-Paged/[0-9a-f]{32}$`);
  expect('getKey answers the stored spelling of the name under the vault URL',
    key.name === `${prefix}-Paged` && kidRe.test(key.id), { name: key.name, id: key.id });
  expect('getKey: an oct-HSM key has no key material', key.keyType === 'oct-HSM'
    && key.key.n === undefined && key.key.k === undefined, key.keyType);
  const rsa = await attempt('getKey of an RSA key', () => client.getKey(`${prefix}-rsa`));
  if (rsa) {
    expect('getKey: an RSA key with its public material', rsa.keyType === 'RSA'
      && rsa.key.n.length === 256 && Buffer.from(rsa.key.e).equals(Buffer.from([1, 0, 1])), rsa.keyType);
  }

  const pages = [];
  await attempt('listPropertiesOfKeyVersions by page', async () => {
    for await (const page of client.listPropertiesOfKeyVersions(asked).byPage()) pages.push(page);
  });
  const ids = pages.flat().map((p) => p.id);
  expect('listPropertiesOfKeyVersions pages through nextLink (25 + 5)',
    pages.length === 2 && pages[0].length === 25 && pages[1].length === 5, pages.map((p) => p.length));
  expect('listPropertiesOfKeyVersions: 30 distinct versions, the latest among them',
    new Set(ids).size === 30 && ids.every((id) => kidRe.test(id)) && ids.includes(key.id), ids.length);

  for (const serviceVersion of ['7.4', '7.5', '7.6', '2025-07-01']) {
    const versioned = new KeyClient(vault, main, { serviceVersion });
    const got = await attempt(`getKey with api-version ${serviceVersion}`, () => versioned.getKey(asked));
    if (got) expect(`getKey with api-version ${serviceVersion}`, got.id === key.id, got.id);
  }
}

// One wrap/unwrap pair: wrapped by `wrapper`, unwrapped by `unwrapper`.
async function roundTrip(what, wrapper, unwrapper, alg, kid, length) {
  const dek = crypto.randomBytes(length);
  const wrapped = await attempt(`${what}: wrapKey`, () => wrapper.wrapKey(alg, dek));
  if (!wrapped) return;
  const unwrapped = await attempt(`${what}: unwrapKey`, () => unwrapper.unwrapKey(alg, wrapped.result));
  if (!unwrapped) return;
  expect(what, Buffer.from(unwrapped.result).equals(dek) && unwrapped.keyID === kid
    && wrapped.algorithm === alg, { keyID: unwrapped.keyID, kid });
}

// Every algorithm the double supports, on RSA, RSA-HSM and oct-HSM keys.
// "full" may read the key, so the SDK wraps RSA-OAEP and RSA1_5 locally with
// the public key; "remote" may not (403 on get), so every operation goes to
// the vault.  Both directions are crossed.
async function checkWrapUnwrap(prefix) {
  const vault = env('VAULT_URL');
  const keys = new KeyClient(vault, main);
  const cases = [
    ['RSA', `${prefix}-rsa`, ['RSA-OAEP-256', 'RSA-OAEP', 'RSA1_5']],
    ['RSA-HSM', `${prefix}-rsahsm`, ['RSA-OAEP-256', 'RSA-OAEP', 'RSA1_5']],
    ['oct-HSM 128', `${prefix}-oct128`, ['A128KW']],
    ['oct-HSM 192', `${prefix}-oct192`, ['A192KW']],
    ['oct-HSM 256', `${prefix}-oct256`, ['A256KW']],
  ];
  for (const [kind, name, algs] of cases) {
    const key = await attempt(`getKey ${name}`, () => keys.getKey(name));
    if (!key) continue;
    expect(`${name} is ${kind}`, key.keyType === kind.split(' ')[0], key.keyType);
    const full = new CryptographyClient(key.id, main);
    const remoteOnly = new CryptographyClient(key.id, remote());
    for (const alg of algs) {
      await roundTrip(`${kind} ${alg}: SDK-side wrap, vault unwrap`, full, remoteOnly, alg, key.id, 32);
      await roundTrip(`${kind} ${alg}: vault wrap, vault unwrap`, remoteOnly, full, alg, key.id, 32);
    }
  }
  const oct = new CryptographyClient((await keys.getKey(`${prefix}-oct256`)).id, remote());
  const wrapped = await attempt('A256KW wraps 32 bytes to 40', () => oct.wrapKey('A256KW', crypto.randomBytes(32)));
  if (wrapped) expect('A256KW wraps 32 bytes to 40', wrapped.result.length === 40, wrapped.result.length);
}

// A disabled version still wraps and refuses to unwrap: 403 Forbidden with
// innererror KeyDisabled, which the SDK surfaces as a RestError.
async function checkDisabled(prefix) {
  const keys = new KeyClient(env('VAULT_URL'), main);
  const key = await attempt('getKey of a disabled key', () => keys.getKey(`${prefix}-disabled`));
  if (!key) return;
  expect('the disabled key reads as disabled', key.properties.enabled === false, key.properties.enabled);
  const client = new CryptographyClient(key.id, main);
  const wrapped = await attempt('wrapKey on a disabled key is allowed',
    () => client.wrapKey('RSA-OAEP-256', crypto.randomBytes(32)));
  if (wrapped) ok('wrapKey on a disabled key is allowed');
  if (!wrapped) return;
  try {
    await client.unwrapKey('RSA-OAEP-256', wrapped.result);
    bad('unwrapKey on a disabled key is refused', 'it unwrapped');
  } catch (error) {
    const inner = error.details?.error?.innerError?.code;
    expect('unwrapKey on a disabled key: RestError 403 Forbidden, innererror KeyDisabled',
      error.name === 'RestError' && error.statusCode === 403 && error.code === 'Forbidden'
        && inner === 'KeyDisabled'
        && /Operation unwrapKey is not allowed on a disabled key/.test(error.message),
      { name: error.name, status: error.statusCode, code: error.code, inner, message: error.message });
  }
}

async function checks(prefix) {
  await checkGetAndPaging(prefix);
  await checkWrapUnwrap(prefix);
  await checkDisabled(prefix);
}

// ---- 429 ---------------------------------------------------------------------

// admin: one call to the double's test-only /_admin API (not the SDK's business).
function admin(method, path, body) {
  return new Promise((resolve, reject) => {
    const request = https.request(`${env('VAULT_URL')}/_admin${path}`, {
      method, headers: { 'Content-Type': 'application/json' },
    }, (response) => {
      let text = '';
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => (response.statusCode === 200 ? resolve(JSON.parse(text))
        : reject(new Error(`admin ${method} ${path}: ${response.statusCode} ${text}`))));
    });
    request.on('error', reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function retry(kid) {
  const client = new CryptographyClient(kid, remote());
  const dek = crypto.randomBytes(32);
  // Warm up: the challenge, the token and the refused key read happen now.
  if (!await attempt('wrapKey before the 429', () => client.wrapKey('RSA-OAEP-256', dek))) return;
  await admin('POST', '/faults', { status: 429, count: 1, retry_after: 1 });
  const started = Date.now();
  const wrapped = await attempt('wrapKey through a 429', () => client.wrapKey('RSA-OAEP-256', dek));
  const elapsed = Date.now() - started;
  console.log(`elapsed_ms ${elapsed}`);
  if (!wrapped) return;
  expect('the SDK waited for Retry-After (1 s) before its retry', elapsed >= 950, elapsed);
  const back = await attempt('unwrapKey after a 429', () => client.unwrapKey('RSA-OAEP-256', wrapped.result));
  if (back) expect('wrapKey through a 429 and its unwrap give the DEK back', Buffer.from(back.result).equals(dek));
}

// ---- blobs across ------------------------------------------------------------

async function sealBlob(out, kid, alg, segShift, size, envName) {
  const algName = SLOT_ALG[alg];
  if (!algName) throw new Error(`slot alg ${alg} is not a key vault algorithm`);
  const plaintext = crypto.randomBytes(Number(size));
  const dek = crypto.randomBytes(32);
  const wrapped = await new CryptographyClient(kid, main).wrapKey(algName, dek);
  const blob = renc.seal({
    plaintext, dek,
    slots: [{ alg: Number(alg), ref: `akv:${wrapped.keyID}`, wrapped: wrapped.result }],
    context: { env: envName, kind: 'blob', name: out.split('/').pop() },
    segShift: Number(segShift),
  });
  dek.fill(0);
  fs.writeFileSync(out, blob, { mode: 0o600 });
  fs.writeFileSync(`${out}.plain`, plaintext, { mode: 0o600 });
  ok(`sealed ${out} under ${wrapped.keyID} (${algName}, ${plaintext.length} bytes)`);
}

async function openBlob(input, out) {
  const blob = fs.readFileSync(input);
  const header = renc.parseHeader(blob);
  const slot = header.slots.find((s) => s.ref.startsWith('akv:') && SLOT_ALG[s.alg]);
  if (!slot) throw new Error('no key vault slot');
  const result = await new CryptographyClient(slot.ref.slice(4), main).unwrapKey(SLOT_ALG[slot.alg], slot.wrapped);
  const dek = Buffer.from(result.result);
  const plaintext = renc.open(blob, header, dek);
  dek.fill(0);
  fs.writeFileSync(out, plaintext, { mode: 0o600 });
  ok(`opened ${input} (${slot.ref}, ${SLOT_ALG[slot.alg]}, env ${header.context.env}, ${plaintext.length} bytes)`);
}

// ---- main --------------------------------------------------------------------

async function run(argv) {
  const [command, ...args] = argv;
  // [arguments per call, function]: seal and open take several groups.
  const commands = {
    checks: [1, checks], paging: [1, checkGetAndPaging], retry: [1, retry], seal: [6, sealBlob], open: [2, openBlob],
  };
  const entry = commands[command];
  if (!entry || args.length === 0 || args.length % entry[0] !== 0
      || (args.length !== entry[0] && !['seal', 'open'].includes(command))) {
    console.error('usage: conformance.js checks|paging PREFIX | retry KID | seal (OUT KID ALG SEGSHIFT SIZE ENV)... | open (IN OUT)...');
    return 2;
  }
  for (let i = 0; i < args.length; i += entry[0]) {
    const group = args.slice(i, i + entry[0]);
    try {
      await entry[1](...group);
    } catch (error) {
      bad(`${command} ${group[0]}`, `${error.name}: ${error.statusCode || ''} ${error.code || ''} ${error.message}`);
    }
  }
  console.log(`conformance.js ${command}: ${results.passed} passed, ${results.failed} failed`);
  return results.failed ? 1 : 0;
}

run(process.argv.slice(2)).then((code) => { process.exitCode = code; });
