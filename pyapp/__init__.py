"""IPIS core: the IPLOS reader, key files and the two-layer XML Encryption format.

Everything imported by the browser path (reader, keyfile, message, contact, xmlenc, rsakey,
identifiers, faults, crypto) uses only the standard library, so it runs unchanged in Pyodide.
"""

__version__ = "0.1.0"
