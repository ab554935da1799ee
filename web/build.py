"""Build IPLOS Krypt: one self-contained HTML file, ``dist/ipis-krypt.html`` (``make page``).

Standard library only. What goes in:

- Pyodide (npm ``pyodide``, pinned in package.json, installed by ``npm ci``): the wasm binary,
  gzip-compressed; ``pyodide.asm.mjs`` made a classic script and concatenated with
  ``pyodide.js`` and ``web/worker.js`` into the worker's one script (a worker made from a blob
  URL cannot import modules from a ``file://`` page), with the sealer worker's script
  (``web/gcm.js`` and ``web/sealer.js``) in it as a string;
- a trimmed Python standard library, together with the ``ipis`` core (the modules of
  ``pyapp/`` the browser path imports, zipped under their installed name ``ipis_core``) and
  ``web/krypt_worker.py``, as one zip, gzip-compressed;
- a memory snapshot of Pyodide started with that zip and ``krypt_worker`` and the core
  imported (``web/make_snapshot.js``), gzip-compressed: the page restores it instead of
  starting Python (about two thirds of the time to ready before);
- ``web/index.html`` and ``web/style.css`` inlined; ``web/watchdog.js`` (plain ES5, so that
  a browser that cannot run the page says so) before the assets; the page's module script
  joined from ``APP_SCRIPTS``; and ``web/early.js`` right after the worker's script, so the
  worker starts while the rest is still parsed (it decompresses its own script).

Binary assets are base64 text in ``<script type="application/octet-stream">`` elements, which
the page never executes. The page shows no fingerprint of itself: a copy that was changed
would show whatever it was changed to show. The build prints the SHA-256 of the whole file,
which the send module's download page publishes beside the download (computed there from the
file it serves) and which the user guide tells how to check (Get-FileHash, certutil,
sha256sum).

Usage: python web/build.py [--out dist/ipis-krypt.html]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
PYODIDE = ROOT / "node_modules" / "pyodide"
DEFAULT_OUT = ROOT / "dist" / "ipis-krypt.html"

# The core modules the browser path imports: standard library only (tests/browser/
# test_build_page.py checks that they are in the page and the native-only modules are not).
CORE_MODULES = (
    "__init__.py",
    "faults.py",
    "identifiers.py",
    "rsakey.py",
    "xmlenc.py",
    "clear_part.py",
    "reader.py",
    "reader_encoding.py",
    "reader_events.py",
    "reader_faults.py",
    "reader_header.py",
    "reader_person_parser.py",
    "reader_persons.py",
    "reader_window.py",
    "contact.py",
    "keyfile.py",
    "message.py",
    "crypto/__init__.py",
    "crypto/webcrypto.py",
)

# Standard library kept: what Pyodide's own start-up and the core import, measured by running
# the real core in the page (tests/browser/test_build_page.py checks a sample of them).
# Packages are kept whole; other modules by name. Everything else (email, http, unittest, ...)
# is left out: the page is smaller and starts faster.
STDLIB_KEEP_PACKAGES = frozenset(
    {
        "_pyodide", "asyncio", "collections", "compression", "concurrent", "encodings",
        "importlib", "json", "logging", "pathlib", "pyodide", "re", "string", "xml", "zipfile",
    }
)  # fmt: skip
STDLIB_KEEP_MODULES = frozenset(
    {
        "__future__", "_collections_abc", "_colorize", "_opcode_metadata", "_py_warnings",
        "_sitebuiltins", "_ssl", "_weakrefset", "abc", "annotationlib", "ast", "base64",
        "bisect", "bz2", "codecs", "codeop", "contextlib", "contextvars", "copy", "copyreg",
        "dataclasses", "datetime", "dis", "enum", "fnmatch", "functools", "genericpath", "glob",
        "hashlib", "heapq", "hmac", "inspect", "io", "keyword", "linecache", "locale", "lzma",
        "ntpath", "opcode", "operator", "os", "posixpath", "random", "reprlib", "secrets",
        "selectors", "shutil", "signal", "site", "socket", "ssl", "stat", "struct",
        "subprocess", "tempfile", "textwrap", "threading", "token", "tokenize", "traceback",
        "types", "typing", "warnings", "weakref", "zipimport",
        # not loaded in the measured runs, kept as cheap insurance for fault paths
        "_pydatetime", "_strptime", "calendar", "numbers", "string", "pprint",
    }
)  # fmt: skip
XML_DROP = ("xml/dom/", "xml/sax/")
# encodings: only what formats §1 and the key file need (and Python's start-up).
ENCODINGS_KEEP = frozenset(
    {
        "__init__.py", "aliases.py", "ascii.py", "latin_1.py", "cp1252.py", "iso8859_1.py",
        "utf_8.py", "utf_8_sig.py", "utf_16.py", "utf_16_le.py", "utf_16_be.py",
        "utf_32.py", "utf_32_le.py", "utf_32_be.py", "charmap.py", "raw_unicode_escape.py",
        "unicode_escape.py", "idna.py", "punycode.py",
    }
)  # fmt: skip

# The page's module script, joined in this order: helpers first, app.js (which uses them) last.
APP_SCRIPTS = ("filename.js", "contact.js", "save.js", "app.js")
ZIP_DATE = (2026, 1, 1, 0, 0, 0)
EXPECTED_ASM_URL_USES = 3


class BuildError(Exception):
    pass


def pinned_pyodide_version() -> str:
    package = json.loads((ROOT / "package.json").read_text())
    wanted = str(package["dependencies"]["pyodide"])
    installed_file = PYODIDE / "package.json"
    if not installed_file.exists():
        raise BuildError("node_modules/pyodide mangler: kjør `npm ci` (scripts/setup.sh)")
    installed = json.loads(installed_file.read_text())["version"]
    if installed != wanted:
        raise BuildError(f"pyodide {installed} is installed, package.json pins {wanted}: npm ci")
    return wanted


def classic_worker_script() -> str:
    """pyodide.asm.mjs as a classic script, then the loader, GCM and the worker's own code."""
    asm = (PYODIDE / "pyodide.asm.mjs").read_text()
    uses = asm.count("import.meta.url")
    if uses != EXPECTED_ASM_URL_USES:
        raise BuildError(f"pyodide.asm.mjs has {uses} import.meta.url, expected 3")
    asm = asm.replace("import.meta.url", "self.location.href")
    export = "export default _createPyodideModule;"
    if asm.count(export) != 1:
        raise BuildError("pyodide.asm.mjs: export default not found")
    asm = asm.replace(export, "self._createPyodideModule=_createPyodideModule;")
    loader = (PYODIDE / "pyodide.js").read_text()
    loader = re.sub(r"^//# sourceMappingURL=.*$", "", loader, flags=re.MULTILINE)
    prelude = (
        "// IPLOS Krypt loads no scripts but this one (the boot script in web/early.js imports\n"
        "// it): Pyodide must also see that importScripts is refused (it takes a working\n"
        "// importScripts for an unsupported classic worker).\n"
        "self.importScripts = () => { throw new Error('importScripts is disabled'); };\n"
    )
    # The sealer worker's whole script (web/sealer.js after web/gcm.js), as a string the worker
    # makes its blob from.
    sealer = (WEB / "gcm.js").read_text() + "\n;\n" + (WEB / "sealer.js").read_text()
    parts = [
        prelude,
        asm,
        loader,
        f"const SEALER_SCRIPT = {json.dumps(sealer)};",
        (WEB / "worker.js").read_text(),
    ]
    return "\n;\n".join(parts)


def _keep_stdlib(name: str) -> bool:
    top = name.split("/")[0]
    if "/" not in name:
        return name.removesuffix(".py") in STDLIB_KEEP_MODULES
    if top == "encodings":
        return name.split("/")[-1] in ENCODINGS_KEEP
    if name.startswith(XML_DROP):
        return False
    return top in STDLIB_KEEP_PACKAGES


def python_zip(full_stdlib: bool = False) -> bytes:
    """Trimmed stdlib + core + the worker's Python, stored (the whole zip is gzipped)."""
    buffer = io.BytesIO()
    source = zipfile.ZipFile(PYODIDE / "python_stdlib.zip")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            if info.is_dir() or not (full_stdlib or _keep_stdlib(info.filename)):
                continue
            out.writestr(zipfile.ZipInfo(info.filename, ZIP_DATE), source.read(info))
        for module in CORE_MODULES:
            data = (ROOT / "pyapp" / module).read_bytes()
            out.writestr(zipfile.ZipInfo(f"ipis_core/{module}", ZIP_DATE), data)
        data = (WEB / "krypt_worker.py").read_bytes()
        out.writestr(zipfile.ZipInfo("krypt_worker.py", ZIP_DATE), data)
    return compile_pyc(buffer.getvalue())


def compile_pyc(source_zip: bytes) -> bytes:
    """Bytecode compiled by Pyodide's own Python (web/compile_pyc.js, run with Node)."""
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "source.zip"
        compiled = Path(work) / "compiled.zip"
        source.write_bytes(source_zip)
        _node("compile_pyc.js", "compiling the Python zip", source, compiled)
        return compiled.read_bytes()


def memory_snapshot(pyzip: bytes) -> bytes:
    """Pyodide started with ``pyzip`` and the worker's Python imported (web/make_snapshot.js)."""
    with tempfile.TemporaryDirectory() as work:
        zip_path = Path(work) / "python.zip"
        lock_path = Path(work) / "lock.json"
        snapshot = Path(work) / "snapshot.bin"
        zip_path.write_bytes(pyzip)
        lock_path.write_text(lock_file_contents())
        _node("make_snapshot.js", "making the memory snapshot", zip_path, lock_path, snapshot)
        return snapshot.read_bytes()


def _node(script: str, doing: str, *paths: Path) -> None:
    try:
        command = ["node", str(WEB / script), *map(str, paths)]
        # fixed arguments, our own paths; node is the one npm ci used, from PATH
        subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603
    except (OSError, subprocess.CalledProcessError) as error:
        raise BuildError(f"{doing} with Pyodide under Node failed: {error}") from None


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def core_version() -> str:
    text = (ROOT / "pyapp" / "__init__.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    if not match:
        raise BuildError("pyapp/__init__.py has no __version__")
    return match.group(1)


def lock_file_contents() -> str:
    """Pyodide's lock file without its package list: the page loads no packages."""
    lock = json.loads((PYODIDE / "pyodide-lock.json").read_text())
    return json.dumps({"info": lock["info"], "packages": {}}, separators=(",", ":"))


def app_script() -> str:
    return "\n".join(f"// --- web/{name}\n{(WEB / name).read_text()}" for name in APP_SCRIPTS)


def render(
    version: str, pyodide_version: str, full_stdlib: bool = False
) -> tuple[bytes, dict[str, int]]:
    worker_script = classic_worker_script().encode()
    wasm = (PYODIDE / "pyodide.asm.wasm").read_bytes()
    pyzip = python_zip(full_stdlib)
    snapshot = memory_snapshot(pyzip)
    # In the order the worker needs them: its script, the wasm (compiled while the rest is
    # parsed), the zip, then the snapshot (restored into the compiled module).
    assets = {
        "worker": gz(worker_script),
        "wasm": gz(wasm),
        "python": gz(pyzip),
        "snapshot": gz(snapshot),
    }
    sizes = {
        "worker.js": len(worker_script),
        "worker.js.gz": len(assets["worker"]),
        "pyodide.asm.wasm": len(wasm),
        "pyodide.asm.wasm.gz": len(assets["wasm"]),
        "snapshot": len(snapshot),
        "snapshot.gz": len(assets["snapshot"]),
        "python.zip": len(pyzip),
        "python.zip.gz": len(assets["python"]),
    }
    # Each asset is followed by the script that hands it to the worker (web/early.js).
    after = {
        "worker": f"<script>\n{(WEB / 'early.js').read_text()}</script>",
        **{
            name: f"<script>window.ipisEarly && window.ipisEarly.send('asset-{name}', '{name}');"
            "</script>"
            for name in ("wasm", "snapshot", "python")
        },
    }
    asset_html = "\n".join(
        f'<script type="application/octet-stream" id="asset-{name}">{b64(data)}</script>\n'
        + after[name]
        for name, data in assets.items()
    )
    build_time = time.strftime("%Y-%m-%d", time.gmtime(_source_date()))
    html = (WEB / "index.html").read_text()
    replacements = {
        "{{STYLE}}": (WEB / "style.css").read_text(),
        "{{WATCHDOG}}": (WEB / "watchdog.js").read_text(),
        "{{APP}}": app_script(),
        "{{ASSETS}}": asset_html,
        "{{VERSION}}": version,
        "{{PYODIDE_VERSION}}": pyodide_version,
        "{{BUILD_DATE}}": build_time,
        "{{LOCK}}": lock_file_contents().replace("<", "\\u003c"),
    }
    for key, value in replacements.items():
        if key not in html:
            raise BuildError(f"web/index.html lacks {key}")
        html = html.replace(key, value)
    return html.encode("utf-8"), sizes


def _source_date() -> float:
    """SOURCE_DATE_EPOCH if set (reproducible builds), else now."""
    return float(os.environ.get("SOURCE_DATE_EPOCH", time.time()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--full-stdlib", action="store_true", help="embed the whole stdlib")
    args = parser.parse_args(argv)
    try:
        pyodide_version = pinned_pyodide_version()
        data, sizes = render(core_version(), pyodide_version, args.full_stdlib)
    except BuildError as error:
        print(f"build: {error}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(args.out.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, args.out)
    for name, size in sizes.items():
        print(f"  {name:22} {size / 1e6:7.2f} MB")
    print(f"Skrev {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
          f" ({len(data) / 1e6:.2f} MB), IPLOS Krypt {core_version()}, Pyodide {pyodide_version}")
    # What the send module's download page shows beside the file, and the user guide checks.
    print(f"SHA-256 (hele filen): {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
