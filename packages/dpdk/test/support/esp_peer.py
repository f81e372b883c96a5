#!/usr/bin/python3
"""The independent ESP peer of the ESP stage's interop tests: scapy's SecurityAssociation
(scapy.layers.ipsec, on python3-cryptography) in tunnel mode.

Reads one JSON request on stdin: {"sa": {...}, "ops": [...]}, writes {"results": [...]}.
  sa: spi, algorithm (the stage's names), key and authKey (hex), tunnel {src, dst}, esn.
  op: {"op": "encrypt", "packet": hex inner IP packet, "seq": n, "esnHigh": n, "badPad": bool}
      -> {"packet": hex outer IP packet} (badPad: the padding bytes inverted before encryption,
      so the packet authenticates but its padding is not 1, 2, 3, ... as RFC 4303 2.4 has it)
      {"op": "decrypt", "packet": hex outer IP packet, "esnHigh": n}
      -> {"packet": hex inner IP packet} or {"error": "..."}

scapy 2.5 leaves the ESN's high half out of the HMAC of ESP (it has it only for AH and for the
AAD of AES-GCM), so with ESN and HMAC-SHA-256-128 this script computes and checks the ICV
itself over the ESP packet and the high half (RFC 4303 2.2.1, RFC 4868); everything else,
cipher, padding, GCM AAD and the tunnel header, is scapy's.
"""
import hashlib
import hmac
import json
import struct
import sys

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.packet import Raw, raw

ALGS = {
    "aes-gcm-128": ("AES-GCM", None),
    "aes-gcm-256": ("AES-GCM", None),
    "aes-cbc-128-hmac-sha256": ("AES-CBC", "SHA2-256-128"),
    "aes-cbc-256-hmac-sha256": ("AES-CBC", "SHA2-256-128"),
}
ICV = 16


def ip_of(b):
    return IPv6(b) if b[0] >> 4 == 6 else IP(b)


def make_sa(c, own_icv):
    crypt, auth = ALGS[c["algorithm"]]
    t = c["tunnel"]
    hdr = IPv6(src=t["src"], dst=t["dst"]) if ":" in t["src"] else IP(src=t["src"], dst=t["dst"])
    kw = dict(crypt_algo=crypt, crypt_key=bytes.fromhex(c["key"]), tunnel_header=hdr,
              esn_en=bool(c.get("esn")))
    if auth and not own_icv:
        kw.update(auth_algo=auth, auth_key=bytes.fromhex(c["authKey"]))
    return SecurityAssociation(ESP, spi=c["spi"], **kw)


def esp_offset(outer):
    """Offset of the ESP header in an outer IP packet (no extension headers)."""
    return 40 if outer[0] >> 4 == 6 else (outer[0] & 0xF) * 4


def main():
    req = json.load(sys.stdin)
    c = req["sa"]
    # With ESN and HMAC the ICV is computed here: scapy's SA then does the cipher only.
    own_icv = bool(c.get("esn")) and ALGS[c["algorithm"]][1] is not None
    sa = make_sa(c, own_icv)
    akey = bytes.fromhex(c.get("authKey", ""))
    out = []
    for op in req["ops"]:
        pkt = bytes.fromhex(op["packet"])
        hi = op.get("esnHigh", 0)
        if op["op"] == "encrypt":
            pad = sa.crypt_algo.pad
            if op.get("badPad"):
                def bad_pad(esp, pad=pad):
                    esp = pad(esp)
                    esp.padding = bytes(b ^ 0xFF for b in esp.padding)
                    return esp
                sa.crypt_algo.pad = bad_pad
            try:
                # Through the SA's counter: scapy reads a seq_num argument of 0 as "none".
                sa.seq_num = op["seq"]
                enc = raw(sa.encrypt(ip_of(pkt), esn=hi))
            finally:
                sa.crypt_algo.pad = pad
            if own_icv:
                o = esp_offset(enc)
                icv = hmac.new(akey, enc[o:] + struct.pack("!L", hi), hashlib.sha256).digest()[:ICV]
                enc = enc + icv
                if enc[0] >> 4 == 6:
                    enc = enc[:4] + struct.pack("!H", len(enc) - 40) + enc[6:]
                else:
                    e = IP(enc)
                    e.len = len(enc)
                    del e.chksum
                    enc = raw(e)
            out.append({"packet": enc.hex()})
            continue
        try:
            if own_icv:
                o = esp_offset(pkt)
                body, icv = pkt[o:-ICV], pkt[-ICV:]
                want = hmac.new(akey, body + struct.pack("!L", hi), hashlib.sha256).digest()[:ICV]
                if not hmac.compare_digest(icv, want):
                    raise ValueError("ICV mismatch")
                pkt = pkt[:-ICV]
                if pkt[0] >> 4 == 6:
                    pkt = pkt[:4] + struct.pack("!H", len(pkt) - 40) + pkt[6:]
                else:
                    pkt = pkt[:2] + struct.pack("!H", len(pkt)) + pkt[4:]
            dec = sa.decrypt(ip_of(pkt), esn=hi)
            inner = raw(dec)
            out.append({"packet": inner.hex()})
        except Exception as e:  # noqa: BLE001 - reported to the test, which expects some
            out.append({"error": f"{type(e).__name__}: {e}"})
    json.dump({"results": out}, sys.stdout)


if __name__ == "__main__":
    main()
