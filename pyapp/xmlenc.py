"""The XML Encryption 1.1 vocabulary IPIS uses, and nothing more.

Every algorithm is fixed (formats §3); readers accept exactly these URIs so that no file can
downgrade a layer to a weaker algorithm.
"""

from __future__ import annotations

XENC_NS = "http://www.w3.org/2001/04/xmlenc#"
XENC11_NS = "http://www.w3.org/2009/xmlenc11#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

# AES-256-GCM: authenticated, so an altered layer fails instead of decrypting to garbage
# (CBC in XML Encryption 1.0 is open to padding-oracle attacks; 1.1 recommends GCM).
AES256_GCM = XENC11_NS + "aes256-gcm"
# RSA-OAEP with SHA-256 and MGF1-SHA-256: the 1.1 form of OAEP that lets both hashes be
# SHA-256 (the 1.0 rsa-oaep-mgf1p URI fixes MGF1 to SHA-1). WebCrypto's RSA-OAEP with
# hash SHA-256 uses SHA-256 for both, so the browser and the native backend agree.
RSA_OAEP = XENC11_NS + "rsa-oaep"
SHA256 = XENC_NS + "sha256"
MGF1_SHA256 = XENC11_NS + "mgf1sha256"
TYPE_ELEMENT = XENC_NS + "Element"

# IPIS's own names around the XML Encryption elements (docs/formater.md §3), here so that the
# readers need not import the writer.
FORMAT_VERSION = "1"
ENVELOPE_ROOT = "IPLOSKryptert"  # the encrypted message's root, in clear
TPF_LAYER_ROOT = "IPLOSInnhold"  # the root of the TPF layer's plaintext

# The fixed names the writer gives the elements of the clear part: readers accept exactly
# these (an Id is a value in clear, so it may not carry anything else).
TPF_LAYER_ID = "tpf-lag"  # the TPF layer's EncryptedData
TPF_KEY_ID = "tpf-nokkel"  # its EncryptedKey
TPF_RECIPIENT = "TPF"
REGISTER_KEY_ID = "registernokkel"  # the register layer's EncryptedKey (inside the TPF layer)
REGISTER_RECIPIENT = "IPLOS"
REGISTER_KEY_CARRIED_NAME = "registerlag"  # its CarriedKeyName
# What the TPF sends the register (docs/formater.md §4 and §6): the pseudonymised message and
# the pseudonym mapping, each one layer wrapped for the register's key.
PSEUDONYMISED_LAYER_ID = "pseudonymisert-lag"  # the EncryptedData of §4
MAPPING_LAYER_ID = "pseudonymbytte-lag"  # the EncryptedData of §6
REGISTER_TRANSPORT_KEY_ID = "register-transportnokkel"  # the EncryptedKey of both

GCM_IV_BYTES = 12  # the 96-bit IV GCM is designed for (NIST SP 800-38D)
GCM_TAG_BYTES = 16
CONTENT_KEY_BYTES = 32  # AES-256

# Namespace declarations written once on each document root that holds xenc elements.
NAMESPACE_DECLARATIONS = (
    f'xmlns:xenc="{XENC_NS}" xmlns:xenc11="{XENC11_NS}" xmlns:ds="{DS_NS}"'
)


def encrypted_key_xml(
    wrapped_key_b64: str, key_name: str, element_id: str, recipient: str, carried_name: str = ""
) -> str:
    """An xenc:EncryptedKey: the content key wrapped with RSA-OAEP for one recipient's key."""
    carried = f"<xenc:CarriedKeyName>{carried_name}</xenc:CarriedKeyName>" if carried_name else ""
    return (
        f'<xenc:EncryptedKey Id="{element_id}" Recipient="{recipient}">'
        f'<xenc:EncryptionMethod Algorithm="{RSA_OAEP}">'
        f'<ds:DigestMethod Algorithm="{SHA256}"/>'
        f'<xenc11:MGF Algorithm="{MGF1_SHA256}"/>'
        "</xenc:EncryptionMethod>"
        f"<ds:KeyInfo><ds:KeyName>{key_name}</ds:KeyName></ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{wrapped_key_b64}</xenc:CipherValue></xenc:CipherData>"
        f"{carried}"
        "</xenc:EncryptedKey>"
    )


# A person's register layer. Type is left out to keep 100 000 records small: the plaintext is
# always one XML element (docs/formater.md), and the key is the register layer's single
# EncryptedKey, so no KeyInfo either.
PERSON_ENCRYPTED_DATA_START = (
    f'<xenc:EncryptedData><xenc:EncryptionMethod Algorithm="{AES256_GCM}"/>'
    "<xenc:CipherData><xenc:CipherValue>"
)
PERSON_ENCRYPTED_DATA_END = "</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"
