// The sealer: a second worker, started by web/worker.js, that does the page's AES-256-GCM.
//
// Why a second thread: the worker that runs Python was busy 4 s of a 4.5 s run on 50 MB, and
// a quarter of that was not Python but WebCrypto's per-call work for 110 000 records and GHASH
// over the TPF layer (measured per thread from /proc, bench/bench_page.py). Here that work runs
// on the other core while Python reads and formats the next batch; the core already overlaps
// sealing one batch with making the next (pyapp/message.py), and the TPF layer's stream lags one
// piece behind (pyapp/crypto/webcrypto.py), as its interface allows.
//
// This script follows web/gcm.js (GcmStream) in the sealer's blob. Requests carry an ``id`` and
// get one answer each: { id, out } or { id, error }. Bytes are transferred, not copied.
'use strict';

const contentKeys = new Map(); // key id -> CryptoKey (AES-GCM, encrypt only)
const streams = new Map(); // stream id -> { stream: GcmStream, queue: Promise }
const busy = {}; // milliseconds spent per operation in this run (bench/bench_page.py)

// One call per batch: plaintexts concatenated and their lengths; IV ‖ ciphertext ‖ tag for
// each, concatenated (each 28 bytes longer than its plaintext), a fresh random IV for each.
async function sealRecords(key, joined, lengths) {
  const count = lengths.length;
  const ivs = crypto.getRandomValues(new Uint8Array(12 * count));
  const jobs = new Array(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const plaintext = joined.subarray(offset, offset + lengths[i]);
    offset += lengths[i];
    jobs[i] = crypto.subtle.encrypt({ name: 'AES-GCM', iv: ivs.subarray(12 * i, 12 * i + 12) }, key, plaintext);
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
}

// A stream's steps run one after the other whatever the order of their arrival.
function onStream(id, step) {
  const entry = streams.get(id);
  const result = entry.queue.then(() => step(entry.stream));
  entry.queue = result.catch(() => {});
  return result;
}

const operations = {
  async importKey(request) {
    const key = await crypto.subtle.importKey('raw', request.raw, { name: 'AES-GCM' }, false, ['encrypt']);
    contentKeys.set(request.key, key);
    return new Uint8Array(0);
  },
  async seal(request) {
    return sealRecords(contentKeys.get(request.key), request.joined, request.lengths);
  },
  async open(request) {
    streams.set(request.stream, { stream: await GcmStream.open(request.raw, request.iv), queue: Promise.resolve() });
    return new Uint8Array(0);
  },
  async update(request) {
    return onStream(request.stream, (stream) => stream.update(request.data));
  },
  async finish(request) {
    const out = await onStream(request.stream, (stream) => stream.finish());
    streams.delete(request.stream);
    return out;
  },
  async forget(request) { // after a run: no key stays in memory longer than its file
    contentKeys.delete(request.key);
    streams.delete(request.stream);
    return new Uint8Array(0);
  },
  async times() {
    const copy = new TextEncoder().encode(JSON.stringify(busy));
    for (const name of Object.keys(busy)) delete busy[name];
    return copy;
  },
};

self.onmessage = async (event) => {
  const request = event.data;
  const started = performance.now();
  try {
    const out = await operations[request.op](request);
    postMessage({ id: request.id, out }, [out.buffer]);
  } catch (error) {
    postMessage({ id: request.id, error: String(error) });
  } finally {
    busy[request.op] = (busy[request.op] || 0) + performance.now() - started;
  }
};
