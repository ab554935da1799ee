"""IPIS core: the IPLOS reader, key files and the two-layer XML Encryption format.

Installed as ``ipis_core``. Every module the browser path imports (listed in web/build.py's
``CORE_MODULES``: the reader and its parts, clear_part, keyfile, message, contact, xmlenc,
rsakey, identifiers, faults, crypto/webcrypto) uses only the standard library, so it runs
unchanged in Pyodide; decrypt, keygen, encrypt_file, crypto/native and the CLI are native only.
"""

__version__ = "0.1.0"
