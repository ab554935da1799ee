"""The envelope reader runs in Pyodide too (standard library only): the TPF's or a browser's
reader can be the same code. Pyodide from node_modules (``make setup``), run by Node."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

from ipis_testlib import VECTORS

REPO = pathlib.Path(__file__).resolve().parents[2]
PYODIDE = REPO / "node_modules" / "pyodide"
# The reader and what it imports: nothing outside the standard library.
MODULES = ("__init__.py", "faults.py", "identifiers.py", "clear_part.py", "xmlenc.py",
           "envelope_grammar.py", "envelope.py")

SCRIPT = """
import {{ loadPyodide }} from {pyodide_mjs};
import fs from "node:fs";
const py = await loadPyodide({{ indexURL: {index_url} }});
py.FS.mkdirTree("/lib/ipis_core");
for (const [name, path] of {modules}) {{
  py.FS.writeFile("/lib/ipis_core/" + name, fs.readFileSync(path));
}}
for (const [name, path] of {vectors}) py.FS.writeFile("/" + name, fs.readFileSync(path));
console.log(py.runPython(`
import json, sys
sys.path.insert(0, "/lib")
from ipis_core.envelope import EnvelopeReader
from ipis_core.faults import IplosFault
data = open("/golden.xml", "rb").read()
reader = EnvelopeReader({{"tpf-vektor"}})
back = b"".join(reader.feed(data[i:i + 97]) for i in range(0, len(data), 97)) + reader.close()
faults = []
for name in ("comment-in-root.xml", "fnr-avsender-navn.xml", "downgrade-cbc.xml"):
    try:
        EnvelopeReader({{"tpf-vektor"}}).feed(open("/" + name, "rb").read())
    except IplosFault as fault:
        faults.append(type(fault).__name__)
json.dumps({{"same": back == data, "kommune": reader.envelope.kommunenummer,
             "faults": faults, "stdlib": sorted(set(sys.modules) & {{"lxml", "cryptography"}})}})
`));
"""


def test_the_envelope_reader_runs_in_pyodide(tmp_path: pathlib.Path) -> None:
    node = shutil.which("node")
    assert node and (PYODIDE / "pyodide.mjs").is_file(), "run make setup (Node and Pyodide)"
    envelope = VECTORS / "envelope"
    vectors = [("golden.xml", envelope / "valid" / "golden.xml")] + [
        (name, envelope / "invalid" / name)
        for name in ("comment-in-root.xml", "fnr-avsender-navn.xml", "downgrade-cbc.xml")
    ]
    script = tmp_path / "lesertest.mjs"
    script.write_text(SCRIPT.format(
        pyodide_mjs=json.dumps(str(PYODIDE / "pyodide.mjs")),
        index_url=json.dumps(str(PYODIDE) + "/"),
        modules=json.dumps([(m, str(REPO / "pyapp" / m)) for m in MODULES]),
        vectors=json.dumps([(n, str(p)) for n, p in vectors]),
    ))
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"same": True, "kommune": "1508", "stdlib": [],
                      "faults": ["MarkupNotAllowed", "FodselsnummerInClearPart",
                                 "AlgorithmNotAllowed"]}
