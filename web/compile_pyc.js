// Build step (run by web/build.py with Node): compile the page's Python zip to bytecode with
// Pyodide's own Python, so the page does not compile the standard library and the core from
// source at every start (that was most of the start-up time).
//
//   node web/compile_pyc.js IN.zip OUT.zip
// IN.zip holds .py files (stored); OUT.zip holds the same modules as sourceless .pyc.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const [input, output] = process.argv.slice(2);
  const pyodideDir = path.join(__dirname, '..', 'node_modules', 'pyodide');
  const { loadPyodide } = require(path.join(pyodideDir, 'pyodide.js'));
  const pyodide = await loadPyodide({ indexURL: pyodideDir + path.sep });
  pyodide.FS.writeFile('/tmp/in.zip', fs.readFileSync(input));
  pyodide.runPython(`
import importlib.util, marshal, zipfile
MAGIC = importlib.util.MAGIC_NUMBER
with zipfile.ZipFile('/tmp/in.zip') as source, zipfile.ZipFile('/tmp/out.zip', 'w', zipfile.ZIP_STORED) as out:
    for info in source.infolist():
        data = source.read(info)
        name = info.filename
        if name.endswith('.py'):
            code = compile(data, name, 'exec', dont_inherit=True, optimize=0)
            # timestamp pyc, mtime 0: zipimport checks it only against a .py beside it (none)
            header = MAGIC + b'\\0\\0\\0\\0' + b'\\0\\0\\0\\0' + (len(data) & 0xFFFFFFFF).to_bytes(4, 'little')
            data = header + marshal.dumps(code)
            name = name + 'c'
        out.writestr(zipfile.ZipInfo(name, info.date_time), data)
`);
  fs.writeFileSync(output, pyodide.FS.readFile('/tmp/out.zip'));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
