// Build step (run by web/build.py with Node): a memory snapshot of Pyodide started with the
// page's own Python zip and with the worker's Python (krypt_worker and the core) imported, so
// the page restores that memory instead of starting Python and importing at every start.
//
// Why: of the page's ~1.2 s to ready, about two thirds were Pyodide starting Python and its
// bootstrap imports after the wasm was compiled (bench/bench_page.py, data-timings). Restoring
// the snapshot skips them; the wasm is still compiled in the page, and the zip is still mounted
// for the modules imported later (fault paths, other encodings).
//
// The snapshot is Pyodide's own mechanism (loadPyodide's _makeSnapshot / _loadSnapshot,
// pyodide.makeMemorySnapshot), made with the pinned Pyodide and restored by the same one; it
// holds the Python heap at build time, so it must be made with the very zip the page mounts
// (zipimport keeps its table of contents in that heap). Nothing secret is in it: no key is made
// before a run. What Python seeds at start is fixed in it, so krypt_worker.info() reseeds
// Python's ``random`` at every start (the core uses ``secrets`` and WebCrypto, never ``random``).
//
//   node web/make_snapshot.js PYTHON.zip LOCK.json OUT.bin
'use strict';

const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const [zip, lock, output] = process.argv.slice(2);
  const pyodideDir = path.join(__dirname, '..', 'node_modules', 'pyodide');
  const { loadPyodide } = require(path.join(pyodideDir, 'pyodide.js'));
  const pyodide = await loadPyodide({
    indexURL: pyodideDir + path.sep,
    stdLibURL: zip,
    lockFileContents: fs.readFileSync(lock, 'utf8'),
    _makeSnapshot: true,
    // what a page's Pyodide has, not this script's path (Node's argv[1] otherwise)
    _sysExecutable: './this.program',
  });
  pyodide.runPython('import gc, krypt_worker\nkrypt_worker.warm_up()\ngc.collect()');
  fs.writeFileSync(output, pyodide.makeMemorySnapshot());
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
