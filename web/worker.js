// The worker of IPLOS Krypt: Pyodide, the ipis core, and WebCrypto glue.
//
// This script follows pyodide.asm.mjs (made classic), pyodide.js and gcm.js in one blob. The
// page sends the compressed wasm and the Python zip as ArrayBuffers; a small fetch replacement
// hands them to Pyodide's loader, so nothing is ever requested from anywhere.
'use strict';

const PLACEHOLDER = 'https://ipis.invalid/';
let pyodide = null;
let krypt = null; // the Python module krypt_worker
let current = null; // the running encryption's state, for cancel

function gunzip(buffer) {
  return new Blob([buffer]).stream().pipeThrough(new DecompressionStream('gzip'));
}

function installFetch(assets) {
  self.fetch = async (url) => {
    const name = String(url).split('/').pop();
    if (name === 'pyodide.asm.wasm') {
      return new Response(gunzip(assets.wasm), { headers: { 'Content-Type': 'application/wasm' } });
    }
    if (name === 'python_stdlib.zip') return new Response(gunzip(assets.python));
    throw new TypeError(`IPLOS Krypt henter ingenting utenfra (${name})`);
  };
}

// --- WebCrypto behind the core's crypto interface (pyapp/crypto/webcrypto.py) ---------------

self.ipisCrypto = {
  async importAesKey(raw) {
    return crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt']);
  },

  async wrapKey(spki, contentKey) {
    const key = await crypto.subtle.importKey(
      'spki', spki, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
    return new Uint8Array(await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, key, contentKey));
  },

  // One call per batch: plaintexts concatenated, their lengths; returns IV ‖ ciphertext ‖ tag
  // for each, concatenated (each 28 bytes longer than its plaintext).
  async sealRecords(key, joined, lengths) {
    const count = lengths.length;
    const ivs = crypto.getRandomValues(new Uint8Array(12 * count));
    const jobs = new Array(count);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const plaintext = joined.subarray(offset, offset + lengths[i]);
      offset += lengths[i];
      jobs[i] = crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: ivs.subarray(12 * i, 12 * i + 12) }, key, plaintext);
    }
    const sealed = await Promise.all(jobs);
    const out = new Uint8Array(offset + 28 * count);
    let at = 0;
    for (let i = 0; i < count; i++) {
      out.set(ivs.subarray(12 * i, 12 * i + 12), at);
      out.set(new Uint8Array(sealed[i]), at + 12);
      at += 12 + sealed[i].byteLength;
    }
    return out;
  },

  async openStream(rawKey, iv) {
    return GcmStream.open(rawKey, iv);
  },
};

// Time spent in each glue function during a run (for bench/bench_page.py).
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

for (const name of ['update', 'finish']) {
  const fn = GcmStream.prototype[name];
  GcmStream.prototype[name] = async function timed(...args) {
    const started = performance.now();
    try {
      return await fn.apply(this, args);
    } finally {
      glueTimes[`stream.${name}`] = (glueTimes[`stream.${name}`] || 0) + performance.now() - started;
    }
  };
}
const ghashUpdate = Ghash.prototype.update;
Ghash.prototype.update = function timedGhash(...args) {
  const started = performance.now();
  ghashUpdate.apply(this, args);
  glueTimes.ghash = (glueTimes.ghash || 0) + performance.now() - started;
};

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
    if (result.summary && message.sink !== 'file') {
      run.flush();
      const blob = new Blob(run.parts, { type: 'application/xml' });
      const timings = { total: performance.now() - started, ...glueTimes };
      postMessage({ type: 'done', id: message.id, result, blob, timings });
    } else if (result.summary) {
      const timings = { total: performance.now() - started, ...glueTimes };
      postMessage({ type: 'done', id: message.id, result, timings });
    } else {
      postMessage({ type: 'done', id: message.id, result });
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

// Tests: the GCM stream against OpenSSL, byte for byte.
async function gcmSelfTest(message) {
  const stream = await GcmStream.open(new Uint8Array(message.key), new Uint8Array(message.iv));
  const pieces = [];
  for (const chunk of message.chunks) pieces.push(await stream.update(new Uint8Array(chunk)));
  pieces.push(await stream.finish());
  const total = pieces.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) { out.set(p, at); at += p.length; }
  postMessage({ type: 'gcm', id: message.id, out }, [out.buffer]);
}

async function start(message) {
  const started = performance.now();
  installFetch(message.assets);
  pyodide = await loadPyodide({
    indexURL: PLACEHOLDER,
    stdLibURL: PLACEHOLDER + 'python_stdlib.zip',
    lockFileContents: message.lock,
    packageBaseUrl: PLACEHOLDER,
    createPyodideModule: self._createPyodideModule,
    checkAPIVersion: true,
    stdout: (line) => console.log(line),
    stderr: (line) => console.warn(line),
  });
  const loaded = performance.now();
  krypt = pyodide.pyimport('krypt_worker');
  const info = JSON.parse(krypt.info());
  const timings = { pyodide: loaded - started, core: performance.now() - loaded };
  postMessage({ type: 'ready', info, timings });
  krypt.warm_up(); // the core, while the operator fills in the form
}

async function modules(message) {
  postMessage({ type: 'modules', id: message.id, modules: JSON.parse(krypt.modules()) });
}

const handlers = { start, encrypt, inspectKeys, checkContact, gcmSelfTest, modules };

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
