// The worker of IPLOS Krypt: Pyodide, the ipis core, and WebCrypto glue.
//
// This script follows pyodide.asm.mjs (made classic) and pyodide.js in one blob. The page
// sends the compressed wasm, the Python zip and the memory snapshot as ArrayBuffers; a small
// fetch replacement hands them to Pyodide's loader, so nothing is ever requested from anywhere.
'use strict';

const PLACEHOLDER = 'https://ipis.invalid/';
let pyodide = null;
let krypt = null; // the Python module krypt_worker
let current = null; // the running encryption's state, for cancel

function gunzip(buffer) {
  return new Blob([buffer]).stream().pipeThrough(new DecompressionStream('gzip'));
}

// The page hands each asset over as soon as it has parsed it (web/early.js); Pyodide's loader
// starts before they are all here and waits in this fetch for the one it needs.
const assets = {};
for (const name of ['wasm', 'snapshot', 'python']) {
  assets[name] = {};
  assets[name].bytes = new Promise((resolve) => { assets[name].arrived = resolve; });
}
const startTimes = {};

// The wasm is compiled as soon as it is here. Pyodide's loader only asks for it once the memory
// snapshot (web/make_snapshot.js) is decompressed, which comes last in the page: compiling
// meanwhile takes the compilation off the way to ready.
const compiledWasm = assets.wasm.bytes.then((wasm) => WebAssembly.compileStreaming(
  new Response(gunzip(wasm), { headers: { 'Content-Type': 'application/wasm' } })));
compiledWasm.catch(() => {}); // the loader's own await reports a failure

function installFetch() {
  // Pyodide instantiates its one module with instantiateStreaming(fetch(...)): it gets the
  // module compiled above (its fetch below is then never read).
  WebAssembly.instantiateStreaming = async (_response, imports) => {
    const module = await compiledWasm;
    return { module, instance: await WebAssembly.instantiate(module, imports) };
  };
  self.fetch = async (url) => {
    const name = String(url).split('/').pop();
    if (name === 'pyodide.asm.wasm') return new Response(null);
    if (name === 'python_stdlib.zip') return new Response(gunzip(await assets.python.bytes));
    throw new TypeError(`IPLOS Krypt henter ingenting utenfra (${name})`);
  };
}

let snapshotBytes = null;
async function snapshot() {
  snapshotBytes = await new Response(gunzip(await assets.snapshot.bytes)).arrayBuffer();
  return snapshotBytes;
}

function asset(message) {
  startTimes[message.name] = performance.now();
  assets[message.name].arrived(message.bytes);
}

// --- WebCrypto behind the core's crypto interface (pyapp/crypto/webcrypto.py) ---------------
//
// The AES-256-GCM work goes to a second worker, the sealer (web/sealer.js, after web/gcm.js in
// SEALER_SCRIPT, which web/build.py defines before this script), so this thread runs Python
// while the other core seals. Only the two RSA-OAEP key wraps of a run stay here.

let sealer = null;
let sealerRequests = 0;
const sealerWaiting = new Map(); // request id -> { resolve, reject }
const sealerIds = { keys: [], streams: [] }; // made in the current run, forgotten after it
let nextSealerId = 1;

function startSealer() {
  if (sealer) return;
  const url = URL.createObjectURL(new Blob([SEALER_SCRIPT], { type: 'text/javascript' }));
  sealer = new Worker(url);
  URL.revokeObjectURL(url);
  sealer.onmessage = (event) => {
    const answer = event.data;
    const waiting = sealerWaiting.get(answer.id);
    sealerWaiting.delete(answer.id);
    if (answer.error !== undefined) waiting.reject(new Error(answer.error));
    else waiting.resolve(answer.out);
  };
  sealer.onerror = (event) => console.error('sealer', event.message);
}

// A Uint8Array that owns its whole buffer, so it can be transferred (to_js makes such copies).
function owned(bytes) {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

function toSealer(op, fields, transfer = []) {
  if (!sealer) startSealer();
  const id = ++sealerRequests;
  return new Promise((resolve, reject) => {
    sealerWaiting.set(id, { resolve, reject });
    sealer.postMessage({ op, id, ...fields }, transfer);
  });
}

self.ipisCrypto = {
  async importAesKey(raw) {
    const key = nextSealerId++;
    const copy = owned(raw);
    await toSealer('importKey', { key, raw: copy }, [copy.buffer]);
    sealerIds.keys.push(key);
    return key;
  },

  async wrapKey(spki, contentKey) {
    const key = await crypto.subtle.importKey(
      'spki', spki, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
    return new Uint8Array(await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, key, contentKey));
  },

  // One call per batch: plaintexts concatenated, their lengths; returns IV ‖ ciphertext ‖ tag
  // for each, concatenated (each 28 bytes longer than its plaintext).
  sealRecords(key, joined, lengths) {
    const copy = owned(joined);
    return toSealer('seal', { key, joined: copy, lengths: Array.from(lengths) }, [copy.buffer]);
  },

  // AES-256-GCM over the TPF layer: each call is answered in order (web/sealer.js).
  async openStream(rawKey, iv) {
    const stream = nextSealerId++;
    const raw = owned(rawKey);
    const nonce = owned(iv);
    await toSealer('open', { stream, raw, iv: nonce }, [raw.buffer, nonce.buffer]);
    sealerIds.streams.push(stream);
    return {
      update(plaintext) {
        const data = owned(plaintext);
        return toSealer('update', { stream, data }, [data.buffer]);
      },
      finish: () => toSealer('finish', { stream }),
    };
  },
};

// After a run: the sealer drops its content keys and streams.
function forgetSealerState() {
  for (const key of sealerIds.keys) toSealer('forget', { key });
  for (const stream of sealerIds.streams) toSealer('forget', { stream });
  sealerIds.keys = [];
  sealerIds.streams = [];
}

// Time spent waiting in each glue function during a run (for bench/bench_page.py).
const glueTimes = {};
for (const [name, fn] of Object.entries(self.ipisCrypto)) {
  self.ipisCrypto[name] = async (...args) => {
    const started = performance.now();
    try {
      return await fn(...args);
    } finally {
      glueTimes[name] = (glueTimes[name] || 0) + performance.now() - started;
    }
  };
}

async function sealerTimes() {
  const bytes = await toSealer('times', {});
  return JSON.parse(new TextDecoder().decode(bytes));
}

// --- one encryption run ---------------------------------------------------------------------

const PART_BYTES = 8 << 20; // to a download: output collected in Blobs of about 8 MB
// To the file chosen in the save dialog: parts go to the page as they are made, and no more
// than this waits unwritten, so memory stays flat whatever the file's size.
const AHEAD_BYTES = 32 << 20;
const WRITTEN = Promise.resolve();

function makeRun(message) {
  const toFile = message.sink === 'file';
  const run = {
    params: JSON.stringify(message.params),
    dataSize: message.data ? message.data.size : 0,
    cancelled: false,
    parts: [],
    buffer: [],
    buffered: 0,
    unwritten: 0, // bytes sent to the page and not yet written to the chosen file
    waitingForWrite: [],
    lastProgress: 0,
    // Slices of the data file; the next slice is read while Python works on this one.
    prefetched: null,
    async read(offset, size) {
      const started = performance.now();
      try {
        const slice = (from) => {
          const buffer = message.data.slice(from, from + size).arrayBuffer();
          buffer.catch(() => {}); // a prefetch nobody awaits must not report an error
          return buffer;
        };
        let pending = run.prefetched;
        if (!pending || pending.offset !== offset || pending.size !== size) {
          pending = { offset, size, buffer: slice(offset) };
        }
        const next = offset + size;
        run.prefetched = next < run.dataSize ? { offset: next, size, buffer: slice(next) } : null;
        return new Uint8Array(await pending.buffer);
      } finally {
        glueTimes.read = (glueTimes.read || 0) + performance.now() - started;
      }
    },
    async readKeys() {
      return new Uint8Array(await message.keys.arrayBuffer());
    },
    // Python awaits this: it resolves at once, or when the chosen file has caught up.
    write(bytes) {
      if (!bytes.length) return WRITTEN;
      if (toFile) return run.send(bytes);
      run.buffer.push(bytes);
      run.buffered += bytes.length;
      if (run.buffered >= PART_BYTES) run.flush();
      return WRITTEN;
    },
    send(bytes) {
      const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      run.unwritten += own.byteLength;
      postMessage({ type: 'output', id: message.id, bytes: own }, [own.buffer]);
      if (run.unwritten < AHEAD_BYTES) return WRITTEN;
      return new Promise((resolve) => run.waitingForWrite.push(resolve));
    },
    written(bytes) {
      run.unwritten -= bytes;
      if (run.unwritten >= AHEAD_BYTES) return;
      const waiting = run.waitingForWrite;
      run.waitingForWrite = [];
      for (const resolve of waiting) resolve();
    },
    flush() {
      if (run.buffer.length) run.parts.push(new Blob(run.buffer));
      run.buffer = [];
      run.buffered = 0;
    },
    progress(bytesRead, persons, force) {
      const now = performance.now();
      if (!force && now - run.lastProgress < 100) return;
      run.lastProgress = now;
      postMessage({ type: 'progress', id: message.id, bytesRead, persons, total: run.dataSize });
    },
  };
  return run;
}

async function encrypt(message) {
  for (const key of Object.keys(glueTimes)) delete glueTimes[key];
  const started = performance.now();
  const run = makeRun(message);
  current = run;
  try {
    const result = JSON.parse(await krypt.encrypt(run));
    forgetSealerState();
    if (!result.summary) {
      postMessage({ type: 'done', id: message.id, result });
      return;
    }
    const timings = { total: performance.now() - started, ...glueTimes };
    for (const [name, ms] of Object.entries(await sealerTimes())) timings[`sealer.${name}`] = ms;
    if (message.sink === 'file') {
      postMessage({ type: 'done', id: message.id, result, timings });
    } else {
      run.flush();
      const blob = new Blob(run.parts, { type: 'application/xml' });
      postMessage({ type: 'done', id: message.id, result, blob, timings });
    }
  } finally {
    current = null;
  }
}

async function inspectKeys(message) {
  let result;
  try {
    const raw = new Uint8Array(await message.keys.arrayBuffer());
    result = JSON.parse(krypt.inspect_keys(raw, message.today));
  } catch (error) { // unreadable: a file gone since it was chosen
    result = JSON.parse(krypt.key_file_unreadable());
  }
  postMessage({ type: 'keys', id: message.id, result });
}

async function checkContact(message) {
  const result = JSON.parse(krypt.check_contact(message.email, message.name, message.mobile));
  postMessage({ type: 'contact', id: message.id, result });
}

// Tests: the sealer's GCM stream against OpenSSL, byte for byte.
async function gcmSelfTest(message) {
  const stream = await self.ipisCrypto.openStream(new Uint8Array(message.key), new Uint8Array(message.iv));
  const pieces = [];
  for (const chunk of message.chunks) pieces.push(await stream.update(new Uint8Array(chunk)));
  pieces.push(await stream.finish());
  forgetSealerState();
  const total = pieces.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) { out.set(p, at); at += p.length; }
  postMessage({ type: 'gcm', id: message.id, out }, [out.buffer]);
}

async function start(message) {
  const started = performance.now();
  installFetch();
  pyodide = await loadPyodide({
    indexURL: PLACEHOLDER,
    stdLibURL: PLACEHOLDER + 'python_stdlib.zip',
    lockFileContents: message.lock,
    packageBaseUrl: PLACEHOLDER,
    createPyodideModule: self._createPyodideModule,
    _loadSnapshot: snapshot(), // Python started and the core imported at build time
    checkAPIVersion: true,
    stdout: (line) => console.log(line),
    stderr: (line) => console.warn(line),
  });
  // Restored: its 31 MB are released (Pyodide's config keeps the promise, and so the buffer).
  if (snapshotBytes.transfer) snapshotBytes.transfer(0); // (Chromium 114 and later)
  snapshotBytes = null;
  const loaded = performance.now();
  krypt = pyodide.pyimport('krypt_worker');
  const info = JSON.parse(krypt.info());
  const at = (t) => performance.timeOrigin + t; // the page converts to its own clock
  const timings = {
    pyodide: loaded - started, core: performance.now() - loaded,
    atStart: at(started), atWasm: at(startTimes.wasm), atSnapshot: at(startTimes.snapshot),
    atPython: at(startTimes.python), atLoaded: at(loaded),
  };
  postMessage({ type: 'ready', info, timings });
  startSealer(); // after ready, not competing with Python's start
  krypt.warm_up(); // the core, while the operator fills in the form
}

async function modules(message) {
  postMessage({ type: 'modules', id: message.id, modules: JSON.parse(krypt.modules()) });
}

const handlers = { start, asset, encrypt, inspectKeys, checkContact, gcmSelfTest, modules };

self.onmessage = (event) => {
  const message = event.data;
  if (message.type === 'cancel') {
    if (current) current.cancelled = true;
    return;
  }
  if (message.type === 'written') {
    if (current) current.written(message.bytes);
    return;
  }
  const handler = handlers[message.type];
  Promise.resolve()
    .then(() => handler(message))
    .catch((error) => {
      console.error(error);
      postMessage({ type: 'error', id: message.id, during: message.type, error: String(error) });
    });
};
