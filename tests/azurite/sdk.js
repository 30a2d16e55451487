// tests/azurite/sdk.js — a small command line over Microsoft's JavaScript
// blob client (@azure/storage-blob, pinned in package-lock.json), so that the
// blob storage tests can set up and check containers with the SDK rather than
// with the tool under test.  Run through az_sdk (tests/e2e/azlib.sh), which
// sets NODE_PATH to the installed packages.
//
// The account comes from AZURE_STORAGE_CONNECTION_STRING.  Errors: a message
// on stderr ("sdk: ..." with the status and error code when the service gave
// them) and exit 1; usage errors exit 2.
//
//   mkcontainer C                      create C (no error when it exists)
//   rmcontainer C                      delete C
//   upload C NAME FILE [OPTS]          one Put Blob; OPTS:
//       --meta k=v --tags k=v (repeatable) --content-type T
//       --cache-control V --content-encoding V --content-language V
//       --content-disposition V --if-match ETAG --if-none-match ETAG
//   upload-blocks C NAME FILE BLOCKSIZE [OPTS]
//                                      Put Block per BLOCKSIZE bytes (ids
//                                      "blk-000000"..., base64), then Put
//                                      Block List with OPTS as above
//   download C NAME FILE [--offset N --count N]
//   download-prefix C PREFIX DIR       every blob under PREFIX into DIR (the
//                                      prefix cut from the names); prints the count
//   props C NAME                       JSON: etag, contentLength, contentType,
//       contentEncoding, contentLanguage, cacheControl, contentDisposition,
//       contentMD5 (base64), lastModified, blobType, metadata, tags,
//       tagCount, accessTier
//   etag C NAME                        the ETag alone (quoted, as sent)
//   list C [PREFIX]                    blob names, one per line
//   list-json C [PREFIX]               JSON lines: name, etag, size, metadata
//   blocks C NAME                      committed blocks, JSON
//                                      [{"name": base64 id, "size": n}, ...]
//   uncommitted C NAME                 the same for the uncommitted blocks
//   stage C NAME ID FILE               Put Block of FILE with block id ID
//                                      (the text before base64: "hdr-2")
//   commit C NAME ID... [OPTS]         Put Block List, each ID (as for
//                                      stage) as <Latest>; prints the ETag
//   overwrite C NAME FILE              another writer: Put Blob with no
//                                      condition, the metadata kept
//   set-meta C NAME k=v ...            Set Blob Metadata (replaces all)
//   set-tags C NAME k=v ...            Set Blob Tags (replaces all)
//   delete C NAME                      delete (with its snapshots)
//   exists C NAME                      exit 0 when it exists, 3 when not
//   sas C [PERMS] [HOURS]              a container SAS query string (no '?'),
//                                      signed with the connection string's
//                                      key; PERMS default "racwdl", HOURS 2
//   blob-sas C NAME [PERMS] [HOURS]    the same for one blob
//   account-sas [PERMS] [HOURS]        an account SAS (services b, all
//                                      resource types)
//
//   serve SOCKET                       stays up, runs commands sent to the
//       unix socket SOCKET one at a time: POST a JSON object {args, cwd,
//       conn (the connection string), stdout, stderr (files it writes)};
//       the answer is the exit status.  az_sdk uses it: loading the SDK
//       takes about half a second, a request a few milliseconds.
"use strict";
const fs = require("fs");
const {
  BlobServiceClient,
  StorageSharedKeyCredential,
  ContainerSASPermissions,
  BlobSASPermissions,
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  generateBlobSASQueryParameters,
  generateAccountSASQueryParameters,
} = require("@azure/storage-blob");

class UsageError extends Error {}

function usage(msg) {
  throw new UsageError(msg);
}

function connString() {
  const cs = process.env.AZURE_STORAGE_CONNECTION_STRING;
  if (!cs) usage("AZURE_STORAGE_CONNECTION_STRING is not set");
  return cs;
}

function service() {
  // Retries: the SDK's own policy (exponential, 4 tries by default), kept so
  // that a test can see it ride through injected 503s; a short base delay
  // keeps those tests quick.
  return BlobServiceClient.fromConnectionString(connString(), {
    retryOptions: { retryDelayInMs: 100, maxRetryDelayInMs: 1000, maxTries: 4 },
  });
}

function sharedKey() {
  const fields = {};
  for (const part of connString().split(";")) {
    const i = part.indexOf("=");
    if (i > 0) fields[part.slice(0, i)] = part.slice(i + 1);
  }
  if (!fields.AccountName || !fields.AccountKey) usage("the connection string has no AccountName/AccountKey");
  return new StorageSharedKeyCredential(fields.AccountName, fields.AccountKey);
}

function pairs(list, what) {
  const out = {};
  for (const kv of list) {
    const i = kv.indexOf("=");
    if (i <= 0) usage(`${what} wants k=v, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

// parseOpts: the write options shared by upload, upload-blocks and overwrite.
function parseOpts(args) {
  const meta = [], tags = [], headers = {}, cond = {};
  const take = (i) => (i + 1 < args.length ? args[i + 1] : usage(`${args[i]} wants a value`));
  const named = {
    "--content-type": "blobContentType", "--cache-control": "blobCacheControl",
    "--content-encoding": "blobContentEncoding", "--content-language": "blobContentLanguage",
    "--content-disposition": "blobContentDisposition",
  };
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--meta") meta.push(take(i++));
    else if (a === "--tags") tags.push(take(i++));
    else if (named[a]) headers[named[a]] = take(i++);
    else if (a === "--if-match") cond.ifMatch = take(i++);
    else if (a === "--if-none-match") cond.ifNoneMatch = take(i++);
    else if (a === "--offset" || a === "--count") rest.push(a, take(i++));
    else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else rest.push(a);
  }
  const opts = { blobHTTPHeaders: headers, conditions: cond };
  if (meta.length) opts.metadata = pairs(meta, "--meta");
  if (tags.length) opts.tags = pairs(tags, "--tags");
  return { opts, rest };
}

function blob(c, name) {
  return service().getContainerClient(c).getBlockBlobClient(name);
}

const blockId = (i) => Buffer.from(`blk-${String(i).padStart(6, "0")}`).toString("base64");

async function uploadBlocks(c, name, file, size, opts) {
  const bs = Number(size);
  if (!(bs > 0)) usage("BLOCKSIZE must be a positive number");
  const data = fs.readFileSync(file);
  const client = blob(c, name);
  const ids = [];
  for (let off = 0, i = 0; off < data.length || i === 0; off += bs, i++) {
    const part = data.subarray(off, Math.min(off + bs, data.length));
    ids.push(blockId(i));
    await client.stageBlock(ids[i], part, part.length);
    if (data.length === 0) break;
  }
  const res = await client.commitBlockList(ids, opts);
  console.log(res.etag);
}

// Every blob under prefix into dir/NAME-without-the-prefix (folders made),
// eight downloads at a time.
async function downloadPrefix(c, prefix, dir) {
  const path = require("path");
  const cc = service().getContainerClient(c);
  const names = [];
  for await (const b of cc.listBlobsFlat({ prefix })) names.push(b.name);
  let next = 0;
  async function worker() {
    while (next < names.length) {
      const name = names[next++];
      const out = path.join(dir, name.slice(prefix.length));
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, await cc.getBlockBlobClient(name).downloadToBuffer());
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  console.log(names.length);
}

async function props(c, name) {
  const client = blob(c, name);
  const p = await client.getProperties();
  let tags = {};
  try {
    tags = (await client.getTags()).tags;
  } catch (e) {
    tags = { error: e.code || String(e) };
  }
  const md5 = p.contentMD5 ? Buffer.from(p.contentMD5).toString("base64") : null;
  console.log(JSON.stringify({
    etag: p.etag, contentLength: p.contentLength, contentType: p.contentType || null,
    contentEncoding: p.contentEncoding || null, contentLanguage: p.contentLanguage || null,
    cacheControl: p.cacheControl || null, contentDisposition: p.contentDisposition || null,
    contentMD5: md5, lastModified: p.lastModified, blobType: p.blobType,
    metadata: p.metadata || {}, tags, tagCount: p.tagCount || 0, accessTier: p.accessTier || null,
  }, null, 1));
}

async function list(c, prefix, asJson) {
  const it = service().getContainerClient(c).listBlobsFlat({ prefix: prefix || undefined, includeMetadata: true });
  for await (const b of it) {
    if (asJson) {
      console.log(JSON.stringify({ name: b.name, etag: b.properties.etag,
        size: b.properties.contentLength, metadata: b.metadata || {} }));
    } else {
      console.log(b.name);
    }
  }
}

async function blocks(c, name, which) {
  const res = await blob(c, name).getBlockList(which);
  const key = which === "committed" ? "committedBlocks" : "uncommittedBlocks";
  console.log(JSON.stringify((res[key] || []).map((b) => ({ name: b.name, size: b.size }))));
}

async function overwrite(c, name, file) {
  const client = blob(c, name);
  let metadata;
  try {
    metadata = (await client.getProperties()).metadata;
  } catch (e) {
    if (e.statusCode !== 404) throw e;
  }
  const data = fs.readFileSync(file);
  const res = await client.upload(data, data.length, { metadata });
  console.log(res.etag);
}

function sasExpiry(hours) {
  const h = hours === undefined ? 2 : Number(hours);
  if (!(h > 0)) usage("HOURS must be a positive number");
  const now = Date.now();
  return { startsOn: new Date(now - 5 * 60 * 1000), expiresOn: new Date(now + h * 3600 * 1000) };
}

function sas(c, name, perms, hours) {
  const Perms = name ? BlobSASPermissions : ContainerSASPermissions;
  const q = generateBlobSASQueryParameters({
    containerName: c, blobName: name || undefined,
    permissions: Perms.parse(perms || "racwdl"), ...sasExpiry(hours),
  }, sharedKey());
  console.log(q.toString());
}

function accountSas(perms, hours) {
  const q = generateAccountSASQueryParameters({
    services: AccountSASServices.parse("b").toString(),
    resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
    permissions: AccountSASPermissions.parse(perms || "racwdl"), ...sasExpiry(hours),
  }, sharedKey());
  console.log(q.toString());
}

async function main(argv) {
  const [cmd, ...args] = argv;
  const { opts, rest } = parseOpts(args);
  const need = (n) => { if (rest.length < n) usage(`${cmd} wants ${n} operands`); };
  switch (cmd) {
    case "mkcontainer":
      need(1); await service().getContainerClient(rest[0]).createIfNotExists(); return 0;
    case "rmcontainer":
      need(1); await service().getContainerClient(rest[0]).delete(); return 0;
    case "upload": {
      need(3);
      const data = fs.readFileSync(rest[2]);
      console.log((await blob(rest[0], rest[1]).upload(data, data.length, opts)).etag);
      return 0;
    }
    case "upload-blocks":
      need(4); await uploadBlocks(rest[0], rest[1], rest[2], rest[3], opts); return 0;
    case "download": {
      need(3);
      const i = rest.indexOf("--offset"), j = rest.indexOf("--count");
      const off = i >= 0 ? Number(rest[i + 1]) : 0, count = j >= 0 ? Number(rest[j + 1]) : undefined;
      const buf = await blob(rest[0], rest[1]).downloadToBuffer(off, count);
      fs.writeFileSync(rest[2], buf);
      return 0;
    }
    case "download-prefix": need(3); await downloadPrefix(rest[0], rest[1], rest[2]); return 0;
    case "props": need(2); await props(rest[0], rest[1]); return 0;
    case "etag": need(2); console.log((await blob(rest[0], rest[1]).getProperties()).etag); return 0;
    case "list": need(1); await list(rest[0], rest[1], false); return 0;
    case "list-json": need(1); await list(rest[0], rest[1], true); return 0;
    case "blocks": need(2); await blocks(rest[0], rest[1], "committed"); return 0;
    case "uncommitted": need(2); await blocks(rest[0], rest[1], "uncommitted"); return 0;
    case "stage": {
      need(4);
      const data = fs.readFileSync(rest[3]);
      await blob(rest[0], rest[1]).stageBlock(Buffer.from(rest[2]).toString("base64"), data, data.length);
      return 0;
    }
    case "commit": {
      need(3);
      const ids = rest.slice(2).map((id) => Buffer.from(id).toString("base64"));
      console.log((await blob(rest[0], rest[1]).commitBlockList(ids, opts)).etag);
      return 0;
    }
    case "overwrite": need(3); await overwrite(rest[0], rest[1], rest[2]); return 0;
    case "set-meta":
      need(2); await blob(rest[0], rest[1]).setMetadata(pairs(rest.slice(2), "set-meta")); return 0;
    case "set-tags":
      need(2); await blob(rest[0], rest[1]).setTags(pairs(rest.slice(2), "set-tags")); return 0;
    case "delete":
      need(2); await blob(rest[0], rest[1]).delete({ deleteSnapshots: "include" }); return 0;
    case "exists": need(2); return (await blob(rest[0], rest[1]).exists()) ? 0 : 3;
    case "sas": need(1); sas(rest[0], null, rest[1], rest[2]); return 0;
    case "blob-sas": need(2); sas(rest[0], rest[1], rest[2], rest[3]); return 0;
    case "account-sas": accountSas(rest[0], rest[1]); return 0;
    default:
      usage(`unknown command "${cmd || ""}" (see the header of tests/azurite/sdk.js)`);
  }
  return 2;
}

// describe: a failure as the exit status and the line for stderr.
function describe(e) {
  if (e instanceof UsageError) return { code: 2, text: `sdk: ${e.message}\n` };
  // A HEAD answers errors without a body: the code is then in the header.
  const code = (e.details && e.details.errorCode) ||
    (e.response && e.response.headers && e.response.headers.get("x-ms-error-code")) || e.code;
  const status = e.statusCode ? ` (HTTP ${e.statusCode}${code ? " " + code : ""})` : "";
  const text = String(e.message || e).split("\n")[0];
  return { code: 1, text: `sdk: ${text}${status}\n` };
}

// runJob: one command for `serve`, with the caller's folder and connection
// string, its output caught into the files the caller named.
async function runJob(job) {
  const util = require("util");
  const out = [];
  let err = "", code;
  const log = console.log;
  console.log = (...a) => out.push(util.format(...a) + "\n");
  try {
    if (job.conn) process.env.AZURE_STORAGE_CONNECTION_STRING = job.conn;
    else delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    process.chdir(job.cwd);
    code = await main(job.args);
  } catch (e) {
    ({ code, text: err } = describe(e));
  } finally {
    console.log = log;
  }
  fs.writeFileSync(job.stdout, out.join(""));
  fs.writeFileSync(job.stderr, err);
  return code;
}

function serve(socket) {
  const http = require("http");
  let queue = Promise.resolve();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      // One job at a time: the connection string and the folder are global.
      queue = queue.then(async () => {
        let code;
        try {
          code = await runJob(JSON.parse(Buffer.concat(chunks).toString()));
        } catch (e) {
          code = 1;
          process.stderr.write(`sdk serve: ${e.message}\n`);
        }
        res.end(String(code));
      });
    });
  });
  server.listen(socket);
}

if (process.argv[2] === "serve") {
  serve(process.argv[3] || usage("serve wants a socket path"));
} else {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      const d = describe(e);
      process.stderr.write(d.text);
      process.exit(d.code);
    },
  );
}
