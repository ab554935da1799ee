"""Where the published XSDs are: package data of the core, so every install carries them.

They are the format's contract (docs/formater.md); the servers validate against them and the
tests check them against the same vectors as the code.
"""

from __future__ import annotations

from pathlib import Path

XSD_DIR = Path(__file__).resolve().parent / "xsd"
ENVELOPE_XSD = XSD_DIR / "ipis-kryptert.xsd"  # the encrypted message's clear part
IPLOS_EXPORT_XSD = XSD_DIR / "iplos-eksport.xsd"  # the municipality's export (formats §1)
