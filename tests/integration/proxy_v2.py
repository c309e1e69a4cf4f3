"""PROXY protocol helpers for integration tests (haproxy.org/download/2.9/doc/proxy-protocol.txt).

parse_proxy_v2(data) decodes a v2 header the way a backend would see it (what ringlb sends);
build_proxy_v1(...) and build_proxy_v2(...) make headers a test client sends to a listener that
accepts the PROXY protocol. Deliberately written apart from the C++ code: the two are checked
against each other through proxy_v2_vectors.txt (test_proxy_v2.py and proxy_protocol_tests).
"""
import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

COMMANDS = {0x0: "LOCAL", 0x1: "PROXY"}
FAMILIES = {0x0: "UNSPEC", 0x1: "INET", 0x2: "INET6", 0x3: "UNIX"}
PROTOCOLS = {0x0: "UNSPEC", 0x1: "STREAM", 0x2: "DGRAM"}
ADDRESS_SIZES = {0x00: 0, 0x11: 12, 0x12: 12, 0x21: 36, 0x22: 36, 0x31: 216, 0x32: 216}

TLV_NAMES = {0x01: "alpn", 0x02: "authority", 0x03: "crc32c", 0x04: "noop", 0x05: "unique_id",
             0x20: "ssl", 0x30: "netns"}
SSL_SUB_NAMES = {0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg", 0x25: "key_alg"}
TLV_TYPES = {name: t for t, name in TLV_NAMES.items()}
SSL_SUB_TYPES = {name: t for t, name in SSL_SUB_NAMES.items()}

CLIENT_SSL, CLIENT_CERT_CONN, CLIENT_CERT_SESS = 0x01, 0x02, 0x04


class ProxyHeaderError(ValueError):
    pass


def _tlvs(area, where):
    """[(type, value bytes)] of a TLV area; raises on a TLV that runs past it."""
    out, pos = [], 0
    while pos < len(area):
        if len(area) - pos < 3:
            raise ProxyHeaderError(f"{where}: truncated TLV header at offset {pos}")
        tlv_type, length = area[pos], struct.unpack("!H", area[pos + 1:pos + 3])[0]
        if pos + 3 + length > len(area):
            raise ProxyHeaderError(f"{where}: TLV 0x{tlv_type:02x} of {length} bytes runs past the end")
        out.append((tlv_type, area[pos + 3:pos + 3 + length]))
        pos += 3 + length
    return out


def _decode_ssl(value):
    if len(value) < 5:
        raise ProxyHeaderError(f"SSL TLV of {len(value)} bytes, need at least 5")
    client, verify = value[0], struct.unpack("!I", value[1:5])[0]
    ssl = {"client": client, "verify": verify,
           "client_ssl": bool(client & CLIENT_SSL),
           "client_cert_conn": bool(client & CLIENT_CERT_CONN),
           "client_cert_sess": bool(client & CLIENT_CERT_SESS)}
    for sub_type, sub_value in _tlvs(value[5:], "SSL TLV"):
        ssl[SSL_SUB_NAMES.get(sub_type, f"0x{sub_type:02x}")] = sub_value.decode("utf-8", "replace")
    return ssl


def parse_proxy_v2(data: bytes) -> dict:
    """Decodes the v2 header at the start of `data`.

    Returns {"command", "family", "protocol", "length" (whole header), "source", "destination"
    ((host, port) tuples for TCP/UDP over IPv4/IPv6, else None), "tlvs" (name -> str, bytes for
    non-text types, "ssl" -> dict with flags, verify and named sub-TLVs), "tlv_list" (raw
    (type, bytes) in order), "rest" (the bytes after the header)}. Raises ProxyHeaderError.
    """
    if len(data) < 16 or data[:12] != SIGNATURE:
        raise ProxyHeaderError("no PROXY v2 signature")
    ver_cmd, fam = data[12], data[13]
    if ver_cmd >> 4 != 2:
        raise ProxyHeaderError(f"version {ver_cmd >> 4}, expected 2")
    if ver_cmd & 0xF not in COMMANDS:
        raise ProxyHeaderError(f"command {ver_cmd & 0xF}")
    length = struct.unpack("!H", data[14:16])[0]
    if len(data) < 16 + length:
        raise ProxyHeaderError(f"header of {16 + length} bytes, only {len(data)} present")
    body = data[16:16 + length]
    result = {"command": COMMANDS[ver_cmd & 0xF], "family": FAMILIES.get(fam >> 4, f"0x{fam >> 4:x}"),
              "protocol": PROTOCOLS.get(fam & 0xF, f"0x{fam & 0xF:x}"), "length": 16 + length,
              "source": None, "destination": None, "tlvs": {}, "tlv_list": [], "rest": data[16 + length:]}
    if result["command"] == "LOCAL":
        return result  # the spec: discard the block, family included
    if fam not in ADDRESS_SIZES:
        raise ProxyHeaderError(f"family/protocol byte 0x{fam:02x}")
    size = ADDRESS_SIZES[fam]
    if length < size:
        raise ProxyHeaderError(f"address block of {length} bytes, family needs {size}")
    if fam >> 4 in (0x1, 0x2):
        n = 4 if fam >> 4 == 0x1 else 16
        src = ipaddress.ip_address(body[:n])
        dst = ipaddress.ip_address(body[n:2 * n])
        sport, dport = struct.unpack("!HH", body[2 * n:2 * n + 4])
        result["source"], result["destination"] = (str(src), sport), (str(dst), dport)
    elif fam >> 4 == 0x3:
        result["source"] = body[:108].rstrip(b"\x00").decode("utf-8", "replace")
        result["destination"] = body[108:216].rstrip(b"\x00").decode("utf-8", "replace")
    for tlv_type, value in _tlvs(body[size:], "header"):
        result["tlv_list"].append((tlv_type, value))
        name = TLV_NAMES.get(tlv_type, f"0x{tlv_type:02x}")
        if tlv_type == 0x20:
            result["tlvs"]["ssl"] = _decode_ssl(value)
        elif tlv_type in (0x01, 0x02, 0x30):
            result["tlvs"][name] = value.decode("utf-8", "replace")
        else:
            result["tlvs"][name] = value
    return result


def _tlv(tlv_type, value):
    if isinstance(value, str):
        value = value.encode()
    return struct.pack("!BH", tlv_type, len(value)) + value


def build_proxy_v1(source=None, destination=None):
    """A v1 line. source/destination are (host, port); None for "PROXY UNKNOWN\\r\\n"."""
    if source is None:
        return b"PROXY UNKNOWN\r\n"
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError("v1 needs both addresses of one family")
    family = "TCP4" if src.version == 4 else "TCP6"
    return f"PROXY {family} {src} {dst} {int(source[1])} {int(destination[1])}\r\n".encode("ascii")


def build_proxy_v2(source=None, destination=None, alpn=None, authority=None, ssl=None,
                   local=False, extra_tlvs=()):
    """A v2 header: PROXY over TCP for (host, port) pairs of one family, else AF_UNSPEC; LOCAL if
    `local`. TLVs in the order ringlb's encoder writes them: ALPN, AUTHORITY, SSL, then
    extra_tlvs [(type, bytes)]. `ssl` is a dict: client (flags int), verify (int), and any of
    version, cn, cipher, sig_alg, key_alg (str)."""
    body = b""
    fam = 0x00
    if source is not None and not local:
        src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
        if src.version == dst.version:
            fam = 0x11 if src.version == 4 else 0x21
            body = src.packed + dst.packed + struct.pack("!HH", int(source[1]), int(destination[1]))
    if alpn:
        body += _tlv(0x01, alpn)
    if authority:
        body += _tlv(0x02, authority)
    if ssl is not None:
        value = struct.pack("!BI", ssl.get("client", 0), ssl.get("verify", 0))
        for name in ("version", "cn", "cipher", "sig_alg", "key_alg"):
            if ssl.get(name):
                value += _tlv(SSL_SUB_TYPES[name], ssl[name])
        body += _tlv(0x20, value)
    for tlv_type, value in extra_tlvs:
        body += _tlv(tlv_type, value)
    ver_cmd = 0x20 if local else 0x21
    return SIGNATURE + struct.pack("!BBH", ver_cmd, 0x00 if local else fam, len(body)) + body
