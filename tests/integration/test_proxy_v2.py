"""Self-check of proxy_v2.py against the C++ encoder's output (proxy_v2_vectors.txt, which
proxy_protocol_tests checks against encodeProxyV2 with the same inputs). No processes."""
import os
import unittest

from proxy_v2 import ProxyHeaderError, build_proxy_v1, build_proxy_v2, parse_proxy_v2

SSL = {"client": 0x07, "verify": 0, "version": "TLSv1.3", "cn": "client.example",
       "cipher": "TLS_AES_128_GCM_SHA256", "sig_alg": "RSA-SHA256", "key_alg": "RSA2048"}


def vectors():
    out = {}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy_v2_vectors.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, hex_bytes = line.split()
                out[name] = bytes.fromhex(hex_bytes)
    return out


class ProxyV2DecoderTest(unittest.TestCase):
    def setUp(self):
        self.vectors = vectors()

    def test_decodes_the_cpp_tcp4_header(self):
        h = parse_proxy_v2(self.vectors["tcp4_alpn_authority"] + b"client")
        self.assertEqual((h["command"], h["family"], h["protocol"]), ("PROXY", "INET", "STREAM"))
        self.assertEqual(h["source"], ("192.0.2.10", 51234))
        self.assertEqual(h["destination"], ("198.51.100.1", 443))
        self.assertEqual(h["tlvs"], {"alpn": "h2", "authority": "example.com"})
        self.assertEqual(h["rest"], b"client")

    def test_decodes_the_cpp_tcp6_header_with_ssl_sub_tlvs(self):
        h = parse_proxy_v2(self.vectors["tcp6_ssl"])
        self.assertEqual(h["source"], ("2001:db8::1", 40000))
        self.assertEqual(h["destination"], ("2001:db8::2", 8443))
        self.assertEqual(h["tlvs"]["authority"], "api.example.com")
        ssl = h["tlvs"]["ssl"]
        self.assertTrue(ssl["client_ssl"] and ssl["client_cert_conn"] and ssl["client_cert_sess"])
        for key, value in SSL.items():
            self.assertEqual(ssl[key], value, key)

    def test_decodes_the_cpp_unspec_header(self):
        h = parse_proxy_v2(self.vectors["unspec_alpn"])
        self.assertEqual((h["family"], h["source"]), ("UNSPEC", None))
        self.assertEqual(h["tlvs"], {"alpn": "http/1.1"})

    def test_builder_reproduces_the_cpp_bytes(self):
        self.assertEqual(build_proxy_v2(("192.0.2.10", 51234), ("198.51.100.1", 443), alpn="h2",
                                        authority="example.com"), self.vectors["tcp4_alpn_authority"])
        self.assertEqual(build_proxy_v2(("2001:db8::1", 40000), ("2001:db8::2", 8443),
                                        authority="api.example.com", ssl=SSL), self.vectors["tcp6_ssl"])
        self.assertEqual(build_proxy_v2(("192.0.2.1", 1), ("::1", 2), alpn="http/1.1"), self.vectors["unspec_alpn"])

    def test_local_and_v1_builders(self):
        h = parse_proxy_v2(build_proxy_v2(local=True) + b"x")
        self.assertEqual((h["command"], h["length"], h["rest"]), ("LOCAL", 16, b"x"))
        self.assertEqual(build_proxy_v1(("192.168.0.1", 56324), ("192.168.0.11", 443)),
                         b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")
        self.assertEqual(build_proxy_v1(("2001:db8::1", 1), ("::1", 2)), b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n")
        self.assertEqual(build_proxy_v1(), b"PROXY UNKNOWN\r\n")

    def test_rejects_truncated_headers_and_tlvs(self):
        data = self.vectors["tcp4_alpn_authority"]
        with self.assertRaises(ProxyHeaderError):
            parse_proxy_v2(data[:-1])
        bad = bytearray(data)
        bad[15] -= 1  # the last TLV now runs past the header
        with self.assertRaises(ProxyHeaderError):
            parse_proxy_v2(bytes(bad))


if __name__ == "__main__":
    unittest.main()
