"""TLS termination, backend side: re-encryption with mTLS, refusal of bad backend certificates,
backend session reuse, bulk transfers both ways, client-certificate facts in the PROXY v2 header.
Real ringlb, nginx backends (what they saw: /id and their access logs), Python recorders."""
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import tempfile
import unittest

from harness import (E2E_BINS, E2E_SKIP, E2eSink, tls_loadgen, CURL, OPENSSL, IntegrationTest, Process, RawBackend, TlsClient, access_lines, internal_tls, parse_id, pool_toml,
                     public_tls, s_client_tls, terminate_config, test_pki, wait_for)
from proxy_v2 import parse_proxy_v2

SNI = "www.example.test"


def curl_get(port, path="/id", timeout=30):
    """(curl exit code, body bytes, stderr) for https://www.example.test:port/path via 127.0.0.1."""
    r = subprocess.run([CURL, "-sS", "--max-time", str(timeout), "--cacert", f"{test_pki()}/public-ca.pem",
                        "--resolve", f"{SNI}:{port}:127.0.0.1", f"https://{SNI}:{port}{path}"], capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


class ReencryptTest(IntegrationTest):
    def vip(self, ng, tls=None, tls_name="backend-1.internal.test", listener_tls=None, workers=2):
        backend = (ng.id_name, ng.address, tls_name) if tls_name else (ng.id_name, ng.address)
        pool = pool_toml("p", [backend], tls=internal_tls(**(tls or {})))
        return self.ringlb(terminate_config(pool, tls=listener_tls), workers=workers)

    def get_id(self, lb):
        rc, body, err = curl_get(lb.port())
        self.assertEqual(rc, 0, err)
        return parse_id(body.decode())


class BackendMtlsTest(ReencryptTest):
    def test_client_certificate_is_presented_to_a_backend_that_requires_one(self):
        ng = self.nginx("b1", verify_client="on", client_ca="internal-ca")
        d = test_pki()
        lb = self.vip(ng, tls={"client_certificate": f"{d}/ringlb-client.pem", "client_key": f"{d}/ringlb-client.key"})
        seen = self.get_id(lb)
        self.assertEqual(seen.get("id"), "b1", seen)
        self.assertIn("CN=ringlb.internal.test", seen.get("client_dn", ""))
        self.assertEqual(seen.get("client_verify"), "SUCCESS")

    def test_without_a_client_certificate_the_backend_refuses_and_the_client_gets_no_data(self):
        ng = self.nginx("b1", verify_client="on", client_ca="internal-ca")
        lb = self.vip(ng)
        rc, body, err = curl_get(lb.port())
        self.assertNotIn(b"id=b1", body)
        # nginx completes a TLS 1.3 handshake and answers 400 "No required SSL certificate was sent".
        self.assertTrue(rc != 0 or b"No required SSL certificate" in body, (rc, body, err))
        log = self.stop_ringlb(lb)
        self.assertTrue(all("verify=SUCCESS" not in line for line in ng.access_log()), ng.access_log())
        ends = [a.get("end") for a in access_lines(log)]
        self.assertEqual(len(ends), 1, log)


    def test_backend_that_fails_the_handshake_without_a_client_certificate(self):
        # openssl s_server -Verify fails the handshake itself (nginx answers 400 instead). In TLS 1.2
        # that happens before ringlb sends anything; in TLS 1.3 the client side of the handshake
        # is over before the server checks the certificate, so the refusal comes as an alert
        # after the client's (encrypted) request went out.
        d = test_pki()
        for version, reason, end in (("1.2", r"TLS handshake failed: .*alert handshake failure.*; no client data was sent",
                                      "backend_tls_failed"),
                                     ("1.3", r"TLS read failed: .*alert certificate required", "backend_error")):
            with self.subTest(version=version):
                www = tempfile.mkdtemp(prefix="ringlb-sserver-")
                with open(os.path.join(www, "id"), "w") as f:
                    f.write("id=b1\n")
                srv = self.start(Process([OPENSSL, "s_server", "-accept", "0", "-cert", f"{d}/backend-1.pem",
                                          "-key", f"{d}/backend-1.key", "-Verify", "1",
                                          "-CAfile", f"{d}/internal-ca.pem", "-WWW"], cwd=www, name="s_server-verify"))
                port = wait_for(lambda: re.search(r"ACCEPT \S*:(\d+)", srv.output()), what="s_server").group(1)
                pool = pool_toml("p", [("b1", f"127.0.0.1:{port}", "backend-1.internal.test")],
                                 tls=internal_tls(max_version=version))
                lb = self.ringlb(terminate_config(pool))
                rc, body, err = curl_get(lb.port())
                self.assertNotEqual(rc, 0, body)
                self.assertEqual(body, b"")
                log = self.stop_ringlb(lb)
                self.assertRegex(log, rf"warning pool p backend b1 \(127\.0\.0\.1:{port}\): {reason}")
                self.assertEqual([a.get("end") for a in access_lines(log)], [end], log)
                self.assertIn("peer did not return a certificate", srv.output())


class BackendRefusalTest(ReencryptTest):
    # (certificate, name ringlb verifies (None: the backend IP), reason it must log)
    CASES = [("backend-wrongname", "backend-1.internal.test", r"Hostname mismatch"),
             ("backend-wrongname", None, r"IP address mismatch: certificate is for DNS:wrong\.internal\.test"),
             ("backend-expired", None, r"certificate has expired"),
             ("backend-untrusted", "backend-1.internal.test", r"unable to get local issuer certificate")]

    def test_bad_backend_certificates_are_refused_before_any_client_data(self):
        for cert, tls_name, reason in self.CASES:
            with self.subTest(cert=cert, tls_name=tls_name):
                ng = self.nginx(cert, cert=cert)
                lb = self.vip(ng, tls_name=tls_name)
                rc, body, err = curl_get(lb.port(), timeout=10)
                self.assertNotEqual(rc, 0, body)
                self.assertEqual(body, b"")
                log = self.stop_ringlb(lb)
                self.assertRegex(log, rf"warn(ing)? pool p backend {cert} \(127\.0\.0\.1:\d+\): TLS handshake failed: "
                                      rf".*({reason}).*; no client data was sent to it")
                ends = [a.get("end") for a in access_lines(log)]
                self.assertEqual(ends, ["backend_tls_failed"], log)
                self.assertEqual(ng.access_log(), [], "the backend got a request")


class BackendSessionReuseTest(ReencryptTest):
    def reuse_flags(self, session_reuse, version):
        ng = self.nginx("b1")
        lb = self.vip(ng, tls={"session_reuse": session_reuse, "max_version": version}, workers=1)
        seen = [self.get_id(lb) for _ in range(4)]
        self.assertEqual({s.get("protocol") for s in seen}, {f"TLSv{version}"})
        log = self.stop_ringlb(lb)
        return [s.get("reused") for s in seen], [a.get("backend_resumed") for a in access_lines(log)]

    def test_later_connections_resume_the_backend_session(self):
        for version in ("1.2", "1.3"):
            nginx_flags, logged = self.reuse_flags(True, version)
            self.assertEqual(nginx_flags, [".", "r", "r", "r"], f"TLS {version}")
            self.assertEqual(logged, ["0", "1", "1", "1"], f"TLS {version}")

    def test_session_reuse_false_never_resumes(self):
        for version in ("1.2", "1.3"):
            nginx_flags, logged = self.reuse_flags(False, version)
            self.assertEqual(nginx_flags, ["."] * 4, f"TLS {version}")
            self.assertEqual(logged, ["0"] * 4, f"TLS {version}")


class BackendNamesTest(ReencryptTest):
    """What ringlb says to the backend: SNI fixed or forwarded, ALPN offered or forwarded,
    and a hashed CA directory instead of a CA file."""

    def test_fixed_sni_and_offered_alpn_reach_the_backend(self):
        ng = self.nginx("b1")
        lb = self.vip(ng, tls={"sni": "api.internal.test", "alpn": ["http/1.1"]})
        seen = self.get_id(lb)
        self.assertEqual(seen.get("sni"), "api.internal.test", seen)
        self.assertEqual(seen.get("alpn"), "http/1.1", seen)

    def test_forwarded_sni_and_negotiated_alpn_reach_the_backend(self):
        ng = self.nginx("b1", http2=True)
        lb = self.vip(ng, tls={"forward_sni": True, "forward_alpn": True},
                      listener_tls=public_tls(alpn=["h2", "http/1.1"]))
        # The client offers only http/1.1: that is what ringlb negotiates and forwards.
        reply = s_client_tls(lb.port(), sni=SNI, ca="public-ca", alpn=["http/1.1"], request="/id")
        self.assertEqual(reply.alpn, "http/1.1", reply)
        seen = parse_id(reply.body())
        self.assertEqual(seen.get("sni"), SNI, seen)
        self.assertEqual(seen.get("alpn"), "http/1.1", seen)
        # curl over HTTP/2: h2 end to end (ringlb relays the h2 bytes between the two streams).
        r = subprocess.run([CURL, "-sS", "--http2", "--max-time", "20", "--cacert", f"{test_pki()}/public-ca.pem",
                            "--resolve", f"{SNI}:{lb.port()}:127.0.0.1", "-w", "\nhttp_version=%{http_version}\n",
                            f"https://{SNI}:{lb.port()}/id"], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn("http_version=2", out)
        self.assertEqual(parse_id(out).get("alpn"), "h2", out)
        log = self.stop_ringlb(lb)
        self.assertIn("alpn=h2", log)

    def test_ca_directory_verifies_the_backend(self):
        ng = self.nginx("b1")
        lb = self.vip(ng, tls={"ca_file": None, "ca_dir": f"{test_pki()}/internal-ca.d"})
        self.assertEqual(self.get_id(lb).get("id"), "b1")


class BulkTest(ReencryptTest):
    def test_64_mib_download_is_byte_exact_through_terminate_and_reencrypt(self):
        ng = self.nginx("b1", blobs={"blob": 64 << 20})
        lb = self.vip(ng)
        rc, body, err = curl_get(lb.port(), "/blob", timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(body), 64 << 20)
        self.assertEqual(hashlib.sha256(body).hexdigest(), ng.blob_sha256["blob"])

    def upload(self, behaviour, size, close_notify):
        """Streams `size` bytes through a terminating ringlb to a plain RawBackend; returns
        (sent sha256, what came back, backend)."""
        backend = self.server(RawBackend(behaviour))
        lb = self.ringlb(terminate_config(pool_toml("plain", [("r1", backend.address)])))
        block = os.urandom(1 << 20)
        chunks = [bytes([i]) + block[1:] for i in range(size >> 20)]
        sent = hashlib.sha256(b"".join(chunks)).hexdigest()
        c = TlsClient(lb.port(), sni=SNI, timeout=60).handshake()
        expect = size if behaviour == "echo" else None
        got = c.exchange(chunks, expect=expect, close_notify=close_notify)
        c.close()
        return sent, got, backend

    def test_16_mib_both_ways_through_terminate_to_an_echo_backend(self):
        sent, got, _ = self.upload("echo", 16 << 20, close_notify=False)
        self.assertEqual(len(got), 16 << 20)
        self.assertEqual(hashlib.sha256(got).hexdigest(), sent)

    def test_16_mib_upload_then_close_notify_reaches_the_backend_as_eof(self):
        sent, got, _ = self.upload("digest_on_eof", 16 << 20, close_notify=True)
        self.assertEqual(got.decode(errors="replace"), f"{sent} {16 << 20}\n")

    def test_burst_then_close_notify_reaches_a_slow_client_whole(self):
        # A fast backend ends its response with close_notify and FIN while a slow client keeps
        # ringlb's queues full: every byte must still arrive, then ringlb's own close_notify.
        size = 24 << 20
        payload = hashlib.sha256(b"seed").digest() * (size // 32)
        backend = BurstTlsBackend(payload)
        self.addCleanup(backend.stop)
        pool = pool_toml("p", [("burst", backend.address, "backend-1.internal.test")], tls=internal_tls())
        lb = self.ringlb(terminate_config(pool), workers=1)
        ctx = ssl.create_default_context(cafile=f"{test_pki()}/public-ca.pem")
        got = bytearray()
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", lb.port()), timeout=30),
                             server_hostname=SNI) as c:
            while True:  # ends at ringlb's close_notify (or EOF)
                try:
                    chunk = c.recv(1 << 14)
                except ssl.SSLEOFError:
                    break
                if not chunk:
                    break
                got += chunk
                time.sleep(0.001)  # a slow reader: ringlb queues, and the backend's FIN comes early
        self.assertEqual(len(got), size)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(payload).hexdigest())
        log = self.stop_ringlb(lb)
        self.assertEqual([a.get("end") for a in access_lines(log)], ["done"], log)


    @unittest.skipUnless(E2E_BINS, E2E_SKIP)
    def test_downloads_ending_in_close_notify_arrive_whole_under_load(self):
        # Regression (found by the benchmark): the backend's EOF was handed to its TLS stream
        # while records received before it still waited in the input queue, so the stream ended
        # early and the tail of the download was lost while the log said end=done. A C TLS sink
        # sends 64 MiB per connection then close_notify and FIN; 4 concurrent downloads keep
        # ringlb busy, so the FIN arrives in the same completion batch as unread records.
        # Before the fix: 27 of 27 downloads short.
        sink = self.start(E2eSink())
        pool = pool_toml("p", [("sink", sink.address, "backend-1.internal.test")], tls=internal_tls())
        lb = self.ringlb(terminate_config(pool), workers=1)
        _, result = tls_loadgen("bulk", "--target", f"127.0.0.1:{lb.port()}", "--concurrency", 4, "--direction", "down",
                                "--bytes-per-conn", "64M", "--duration", 3, "--sni", SNI)
        self.assertGreaterEqual(result["completed"], 4, result)
        self.assertEqual(result["errors"], 0, result)  # "short": a download cut before its last byte
        self.assertTrue(sink.alive())


class BurstTlsBackend:
    """A TLS backend (backend-1 certificate) that, on each connection, sends `payload` at
    once, then close_notify, then closes: a fast server ending a response with EOF."""

    def __init__(self, payload):
        d = test_pki()
        self.payload = payload
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(f"{d}/backend-1.pem", f"{d}/backend-1.key")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as tls:
                    tls.sendall(self.payload)
                    tls.unwrap()  # close_notify; then the socket closes
            except (OSError, ssl.SSLError):
                pass

    def stop(self):
        self.sock.close()


class ProxyTlvTest(ReencryptTest):
    def tlv_vip(self, client_verify):
        backend = self.server(RawBackend("echo"))
        d = test_pki()
        tls = public_tls(client_verify=client_verify, client_ca_file=f"{d}/client-ca.pem",
                         client_crl_file=f"{d}/client-ca.crl")
        lb = self.ringlb(terminate_config(pool_toml("p", [("r1", backend.address)], proxy_protocol="v2"), tls=tls))
        return lb, backend

    def header_seen(self, lb, cert, version=None):
        """The PROXY v2 header our echo backend got (it echoes it back) for one connection."""
        c = TlsClient(lb.port(), sni=SNI, cert=cert, version=version).handshake()
        try:
            echoed = c.exchange([b"hello\n"], until=b"hello\n")
        finally:
            c.close()
        h = parse_proxy_v2(echoed)
        self.assertEqual(h["rest"], b"hello\n")
        return h

    def assert_refused(self, lb, backend, cert):
        """The handshake or the first read fails; the backend never sees a connection."""
        c = TlsClient(lb.port(), sni=SNI, cert=cert)
        try:
            got = c.handshake().exchange([b"hello\n"], until=b"hello\n")
        except (ssl.SSLError, ConnectionError, OSError):
            got = b""
        finally:
            c.close()
        self.assertEqual(got, b"")
        self.assertEqual(backend.connections, 0)

    def test_ssl_tlv_carries_the_verified_client_certificate(self):
        lb, backend = self.tlv_vip("required")
        for version in ("1.2", "1.3"):
            h = self.header_seen(lb, "client-alice", version)
            self.assertEqual(h["tlvs"].get("authority"), SNI)
            self.assertEqual(h["source"][0], "127.0.0.1")
            tlv = h["tlvs"]["ssl"]
            self.assertTrue(tlv["client_ssl"] and tlv["client_cert_conn"], tlv)
            self.assertEqual(tlv["verify"], 0, tlv)
            self.assertEqual(tlv.get("cn"), "client-alice", tlv)
            self.assertEqual(tlv.get("version"), f"TLSv{version}", tlv)
            self.assertTrue(tlv.get("cipher"), tlv)
            self.assertTrue(tlv.get("sig_alg") and tlv.get("key_alg"), tlv)

    def test_required_client_verify_refuses_no_certificate_and_a_revoked_one(self):
        lb, backend = self.tlv_vip("required")
        self.assert_refused(lb, backend, None)
        self.assert_refused(lb, backend, "client-mallory")
        log = self.stop_ringlb(lb)
        failures = [a for a in access_lines(log) if a.get("end") == "handshake_failed"]
        self.assertEqual(len(failures), 2, log)
        self.assertIn("revoked", failures[1].get("tls_error", ""), log)

    def test_optional_client_verify_serves_without_a_certificate_and_says_so(self):
        lb, backend = self.tlv_vip("optional")
        tlv = self.header_seen(lb, None)["tlvs"]["ssl"]
        self.assertTrue(tlv["client_ssl"], tlv)
        self.assertFalse(tlv["client_cert_conn"], tlv)
        self.assertNotEqual(tlv["verify"], 0, tlv)
        self.assertNotIn("cn", tlv)
        tlv = self.header_seen(lb, "client-alice")["tlvs"]["ssl"]
        self.assertEqual((tlv["verify"], tlv.get("cn")), (0, "client-alice"), tlv)


if __name__ == "__main__":
    unittest.main()
