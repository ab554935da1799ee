// AES-256-GCM as a stream on WebCrypto (runs in the sealer worker, web/sealer.js).
//
// WebCrypto's AES-GCM is one-shot: it needs the whole plaintext at once, and the TPF layer is
// as large as the file (500 MB). So the stream is built from GCM's own parts (NIST SP 800-38D):
// the keystream is AES-CTR through WebCrypto with the counter block IV || 00000002 upward
// (GCM's inc32: a 32-bit counter), and the tag is GHASH over the ciphertext, XORed with
// E(K, IV || 00000001). Only GHASH (a multiplication in GF(2^128)) is computed here, with
// one 8-bit table per byte position, on 32-bit integers. The browser tests compare the whole
// stream byte for byte with OpenSSL on random inputs and split points.
'use strict';

const GCM_R8 = (() => {
  // Reduction for the 8 bits shifted out at the low end when multiplying by x^8.
  const table = new Int32Array(256);
  for (let r = 0; r < 256; r++) {
    let v0 = 0, v1 = 0, v2 = 0, v3 = r;
    for (let k = 0; k < 8; k++) {
      const lsb = v3 & 1;
      v3 = (v3 >>> 1) | (v2 << 31);
      v2 = (v2 >>> 1) | (v1 << 31);
      v1 = (v1 >>> 1) | (v0 << 31);
      v0 = v0 >>> 1;
      if (lsb) v0 ^= 0xe1000000;
    }
    table[r] = v0;
  }
  return table;
})();

function gcmWords(bytes, offset) {
  const w = [];
  for (let i = 0; i < 4; i++) {
    const o = offset + 4 * i;
    w.push((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]);
  }
  return w;
}

class Ghash {
  constructor(h) {
    // t[i][b] = (byte b at position i of the block)·H, bit 7 of b being the lowest power of x
    // in that byte. Then X·H is the XOR of t[i][x_i] over the 16 bytes: 16 lookups per block,
    // no shifting (64 KB of tables per key; a file has one key for the TPF layer).
    const t = new Int32Array(16 * 256 * 4);
    let [v0, v1, v2, v3] = gcmWords(h, 0);
    for (let bit = 0x80; bit >= 1; bit >>= 1) {
      t[bit * 4] = v0; t[bit * 4 + 1] = v1; t[bit * 4 + 2] = v2; t[bit * 4 + 3] = v3;
      const lsb = v3 & 1;
      v3 = (v3 >>> 1) | (v2 << 31);
      v2 = (v2 >>> 1) | (v1 << 31);
      v1 = (v1 >>> 1) | (v0 << 31);
      v0 = v0 >>> 1;
      if (lsb) v0 ^= 0xe1000000;
    }
    for (let i = 2; i < 256; i <<= 1) {
      for (let j = 1; j < i; j++) {
        for (let k = 0; k < 4; k++) t[(i + j) * 4 + k] = t[i * 4 + k] ^ t[j * 4 + k];
      }
    }
    for (let position = 1; position < 16; position++) {
      const from = (position - 1) * 1024, to = position * 1024;
      for (let b = 0; b < 256; b++) {
        // multiply by x^8: shift right one byte, reduce the byte shifted out
        const z0 = t[from + b * 4], z1 = t[from + b * 4 + 1], z2 = t[from + b * 4 + 2];
        const z3 = t[from + b * 4 + 3];
        t[to + b * 4] = (z0 >>> 8) ^ GCM_R8[z3 & 0xff];
        t[to + b * 4 + 1] = (z1 >>> 8) | (z0 << 24);
        t[to + b * 4 + 2] = (z2 >>> 8) | (z1 << 24);
        t[to + b * 4 + 3] = (z3 >>> 8) | (z2 << 24);
      }
    }
    this.t = t;
    this.y = new Int32Array(4);
  }

  // Absorb the 16-byte blocks of data[start, end); a last partial block is zero-padded.
  update(data, start, end) {
    const t = this.t;
    let y0 = this.y[0], y1 = this.y[1], y2 = this.y[2], y3 = this.y[3];
    for (let o = start; o < end; o += 16) {
      if (o + 16 <= end) {
        y0 ^= (data[o] << 24) | (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3];
        y1 ^= (data[o + 4] << 24) | (data[o + 5] << 16) | (data[o + 6] << 8) | data[o + 7];
        y2 ^= (data[o + 8] << 24) | (data[o + 9] << 16) | (data[o + 10] << 8) | data[o + 11];
        y3 ^= (data[o + 12] << 24) | (data[o + 13] << 16) | (data[o + 14] << 8) | data[o + 15];
      } else {
        const block = new Uint8Array(16);
        block.set(data.subarray(o, end));
        const [b0, b1, b2, b3] = gcmWords(block, 0);
        y0 ^= b0; y1 ^= b1; y2 ^= b2; y3 ^= b3;
      }
      // byte i of the block (big-endian in the words) looks up table i
      let z0 = 0, z1 = 0, z2 = 0, z3 = 0, p;
      p = ((y0 >>> 24) & 0xff) << 2; z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 1024 + (((y0 >>> 16) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 2048 + (((y0 >>> 8) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 3072 + ((y0 & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 4096 + (((y1 >>> 24) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 5120 + (((y1 >>> 16) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 6144 + (((y1 >>> 8) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 7168 + ((y1 & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 8192 + (((y2 >>> 24) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 9216 + (((y2 >>> 16) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 10240 + (((y2 >>> 8) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 11264 + ((y2 & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 12288 + (((y3 >>> 24) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 13312 + (((y3 >>> 16) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 14336 + (((y3 >>> 8) & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      p = 15360 + ((y3 & 0xff) << 2); z0 ^= t[p]; z1 ^= t[p + 1]; z2 ^= t[p + 2]; z3 ^= t[p + 3];
      y0 = z0; y1 = z1; y2 = z2; y3 = z3;
    }
    this.y[0] = y0; this.y[1] = y1; this.y[2] = y2; this.y[3] = y3;
  }

  digest() {
    const out = new Uint8Array(16);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 4; i++) view.setInt32(4 * i, this.y[i]);
    return out;
  }
}

class GcmStream {
  // Use GcmStream.open(rawKey, iv): construction needs WebCrypto, which is async.
  constructor(key, iv, ghash, tagMask) {
    this.key = key;
    this.iv = iv;
    this.ghash = ghash;
    this.tagMask = tagMask;
    this.counter = 2; // inc32(J0): block 1 masks the tag
    this.pending = new Uint8Array(0); // < 16 bytes not yet encrypted
    this.length = 0; // ciphertext bytes so far
    this.done = false;
  }

  static async open(rawKey, iv) {
    if (rawKey.length !== 32 || iv.length !== 12) throw new Error('AES-256-GCM: bad key or IV');
    const key = await crypto.subtle.importKey('raw', rawKey, { name: 'AES-CTR' }, false, ['encrypt']);
    const h = await GcmStream.block(key, new Uint8Array(16)); // H = E(K, 0^128)
    const j0 = new Uint8Array(16);
    j0.set(iv);
    j0[15] = 1;
    const tagMask = await GcmStream.block(key, j0); // E(K, J0)
    return new GcmStream(key, iv, new Ghash(h), tagMask);
  }

  static async block(key, counterBlock) {
    const out = await crypto.subtle.encrypt(
      { name: 'AES-CTR', counter: counterBlock, length: 32 }, key, new Uint8Array(16));
    return new Uint8Array(out);
  }

  async ctr(data) {
    const counterBlock = new Uint8Array(16);
    counterBlock.set(this.iv);
    new DataView(counterBlock.buffer).setUint32(12, this.counter >>> 0);
    const out = new Uint8Array(await crypto.subtle.encrypt(
      { name: 'AES-CTR', counter: counterBlock, length: 32 }, this.key, data));
    this.counter += Math.ceil(data.length / 16);
    if (this.counter > 0xffffffff) throw new Error('AES-GCM: counter exhausted');
    this.ghash.update(out, 0, out.length);
    this.length += out.length;
    return out;
  }

  // Ciphertext for whole blocks so far; up to 15 bytes wait for the next call or finish().
  async update(plaintext) {
    if (this.done) throw new Error('AES-GCM stream already finished');
    let data = plaintext;
    if (this.pending.length) {
      data = new Uint8Array(this.pending.length + plaintext.length);
      data.set(this.pending);
      data.set(plaintext, this.pending.length);
    }
    const whole = data.length - (data.length % 16);
    this.pending = data.slice(whole);
    if (!whole) return new Uint8Array(0);
    return this.ctr(data.subarray(0, whole));
  }

  // The remaining ciphertext followed by the 16-byte tag.
  async finish() {
    if (this.done) throw new Error('AES-GCM stream already finished');
    this.done = true;
    const tail = this.pending.length ? await this.ctr(this.pending) : new Uint8Array(0);
    this.pending = new Uint8Array(0);
    const lengths = new Uint8Array(16); // len(A) = 0 bits, len(C) in bits, both 64-bit
    const view = new DataView(lengths.buffer);
    const bits = this.length * 8;
    view.setUint32(8, Math.floor(bits / 0x100000000));
    view.setUint32(12, bits >>> 0);
    this.ghash.update(lengths, 0, 16);
    const tag = this.ghash.digest();
    for (let i = 0; i < 16; i++) tag[i] ^= this.tagMask[i];
    const out = new Uint8Array(tail.length + 16);
    out.set(tail);
    out.set(tag, tail.length);
    return out;
  }
}

self.GcmStream = GcmStream;
