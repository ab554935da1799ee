// The page's Python under Node.js, for bench/explore_page_python.py: the ipis core (pyapp/ as
// ipis_core), web/krypt_worker.py and bench/no_crypto.py in the npm package's Pyodide, the one
// the page embeds. Prints one JSON line: Pyodide's Python version, and the CPU seconds of each
// run of the core without crypto and of the page's entry point with no-op crypto glue.
//
//   node bench/explore_page_python.mjs ROOT INPUT KEYS RUNS PROFILE(0|1)
import fs from 'fs';
import path from 'path';
import { pathToFileURL } from 'url';

const [root, input, keys, runs, profile] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(path.join(root, 'node_modules/pyodide/pyodide.mjs')).href);
const py = await loadPyodide({ indexURL: path.join(root, 'node_modules/pyodide/') });

function copyInto(from, to) {
  py.FS.mkdirTree(to);
  for (const name of fs.readdirSync(from)) {
    if (name.endsWith('.py')) py.FS.writeFile(`${to}/${name}`, fs.readFileSync(path.join(from, name)));
  }
}
copyInto(path.join(root, 'pyapp'), '/lib/ipis_core');
copyInto(path.join(root, 'pyapp/crypto'), '/lib/ipis_core/crypto');
py.FS.writeFile('/lib/krypt_worker.py', fs.readFileSync(path.join(root, 'web/krypt_worker.py')));
py.FS.writeFile('/lib/no_crypto.py', fs.readFileSync(path.join(root, 'bench/no_crypto.py')));
py.runPython("import sys; sys.path.insert(0, '/lib')");

// Plain Uint8Arrays: Pyodide does not take Node's Buffer subclass.
globalThis.inputBytes = new Uint8Array(fs.readFileSync(input));
globalThis.keyBytes = new Uint8Array(fs.readFileSync(keys));

// web/worker.js's crypto glue, doing no crypto: answers of the real lengths.
globalThis.ipisCrypto = {
  async importAesKey() { return 1; },
  async wrapKey() { return new Uint8Array(384); },
  async sealRecords(key, joined, lengths) {
    return new Uint8Array(joined.length + 28 * lengths.length);
  },
  async openStream() {
    return {
      async update(plaintext) { return new Uint8Array(plaintext.length); },
      async finish() { return new Uint8Array(16); },
    };
  },
};

// web/worker.js's run object, as krypt_worker.encrypt uses it.
globalThis.makeRun = () => ({
  params: JSON.stringify({
    data: 'iplos.xml', out: 'kryptert.xml', keys: 'nokkelfil.xml',
    email: 'kontakt@kommune.no', name: 'Kari Nordmann', mobile: '91234567', today: '',
  }),
  dataSize: globalThis.inputBytes.length,
  cancelled: false,
  async read(offset, size) { return globalThis.inputBytes.subarray(offset, offset + size); },
  async readKeys() { return globalThis.keyBytes; },
  async write() {},
  progress() {},
});

const result = await py.runPythonAsync(`
import cProfile, datetime, io, json, pstats, sys, time
import js, krypt_worker
from no_crypto import timed_without_crypto

data, raw_keys = js.inputBytes.to_bytes(), js.keyBytes.to_bytes()
core, page = [], []
for _ in range(${Number(runs)}):
    core.append(timed_without_crypto(data, raw_keys, datetime.date.today())[0])
    started = time.process_time()
    answer = json.loads(await krypt_worker.encrypt(js.makeRun()))
    page.append(time.process_time() - started)
    assert "summary" in answer, answer
text = ""
if ${profile === '1' ? 'True' : 'False'}:
    profiler = cProfile.Profile()
    profiler.enable()
    await krypt_worker.encrypt(js.makeRun())
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(20)
    text = stream.getvalue()
json.dumps({"version": sys.version.split()[0], "core": core, "page": page,
            "persons": answer["summary"]["persons"], "profile": text})
`);
console.log(result);
