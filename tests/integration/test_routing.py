"""SNI / wildcard / ALPN / default routing and refusal actions, with real s_server backends."""
import unittest

from harness import IntegrationTest, SServer, curl, s_client, RawBackend, client_hello
import socket


def config(pools, routes, listener_extra="", global_extra=""):
    text = f"""
[global]
workers = 2
log_level = "info"
{global_extra}

[[listener]]
name = "vip"
bind = ["127.0.0.1:0"]
{listener_extra}
"""
    for sni, pool, alpn in routes:
        text += f'\n[[listener.route]]\nsni = "{sni}"\npool = "{pool}"\n'
        if alpn:
            text += f'alpn = "{alpn}"\n'
    for name, backends, extra in pools:
        text += f'\n[[pool]]\nname = "{name}"\n{extra}\n'
        for bname, addr in backends:
            text += f'[[pool.backend]]\nname = "{bname}"\naddress = "{addr}"\n'
    return text


class RoutingTest(IntegrationTest):
    def test_sni_routes_to_two_pools(self):
        alpha = self.start(SServer("alpha-1", "alpha.test"))
        beta = self.start(SServer("beta-1", "beta.test"))
        lb = self.ringlb(config([("alpha", [("a1", alpha.address)], ""), ("beta", [("b1", beta.address)], "")],
                                [("alpha.test", "alpha", None), ("beta.test", "beta", None)]))
        port = lb.port()
        for _ in range(3):
            rc, out, err = curl(port, "alpha.test")
            self.assertEqual((rc, out), (0, "alpha-1"), err)
            rc, out, err = curl(port, "beta.test")
            self.assertEqual((rc, out), (0, "beta-1"), err)
        log = self.stop_ringlb(lb)
        self.assertIn("sni=alpha.test", log)
        self.assertIn("pool=beta backend=b1", log)
        self.assertRegex(log, r"client=127\.0\.0\.1:\d+ listener=vip sni=alpha.test")  # peer known after close

    def test_sni_match_is_case_insensitive(self):
        alpha = self.start(SServer("alpha-1", "alpha.test"))
        lb = self.ringlb(config([("alpha", [("a1", alpha.address)], "")], [("alpha.test", "alpha", None)],
                                'on_no_match = "close"'))
        rc, out, _ = s_client(lb.port(), "ALPHA.Test", stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("alpha-1", out)

    def test_wildcard_and_default_routes(self):
        wild = self.start(SServer("wild-1", "a.wild.test"))
        dflt = self.start(SServer("default-1", "default.test"))
        lb = self.ringlb(config([("wild", [("w1", wild.address)], ""), ("dflt", [("d1", dflt.address)], "")],
                                [("*.wild.test", "wild", None)], 'default_pool = "dflt"\non_no_match = "default"'))
        port = lb.port()
        rc, out, err = curl(port, "a.wild.test")
        self.assertEqual((rc, out), (0, "wild-1"), err)
        rc, out, err = curl(port, "default.test")
        self.assertEqual((rc, out), (0, "default-1"), err)
        # One label only: b.a.wild.test is not matched by *.wild.test and goes to the default.
        rc, out, _ = s_client(port, "b.a.wild.test", stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("default-1", out)

    def test_alpn_route_beats_plain_sni_route(self):
        h2 = self.start(SServer("h2-backend", "alpha.test"))
        h1 = self.start(SServer("h1-backend", "alpha.test"))
        lb = self.ringlb(config([("h2", [("h2b", h2.address)], ""), ("h1", [("h1b", h1.address)], "")],
                                [("alpha.test", "h2", "h2"), ("alpha.test", "h1", None)]))
        rc, out, _ = s_client(lb.port(), "alpha.test", ["-alpn", "h2,http/1.1"], stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("h2-backend", out)
        rc, out, _ = s_client(lb.port(), "alpha.test", ["-alpn", "http/1.1"], stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("h1-backend", out)

    def test_no_sni_alert_close_and_default(self):
        alpha = self.start(SServer("alpha-1", "alpha.test"))
        routes = [("alpha.test", "alpha", None)]
        pools = [("alpha", [("a1", alpha.address)], "")]
        # alert: the client is told unrecognized_name
        lb = self.ringlb(config(pools, routes, 'on_no_sni = "alert"'), name="lb-alert")
        rc, out, err = s_client(lb.port(), None)
        self.assertNotEqual(rc, 0)
        self.assertIn("unrecognized name", (out + err).lower())
        log = self.stop_ringlb(lb)
        self.assertIn("end=no_route", log)
        # close: connection closed without an alert
        lb = self.ringlb(config(pools, routes, 'on_no_sni = "close"'), name="lb-close")
        rc, out, err = s_client(lb.port(), None)
        self.assertNotEqual(rc, 0)
        self.assertNotIn("unrecognized name", (out + err).lower())
        self.stop_ringlb(lb)
        # default: served by the default pool
        lb = self.ringlb(config(pools, routes, 'default_pool = "alpha"\non_no_sni = "default"'), name="lb-default")
        rc, out, err = s_client(lb.port(), None, stdin=b"GET /id HTTP/1.0\r\n\r\n")
        self.assertIn("alpha-1", out)

    def test_no_match_gets_unrecognized_name_alert_and_no_backend_contact(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(config([("p", [("b", backend.address)], "")], [("alpha.test", "p", None)],
                                'on_no_match = "alert"'))
        rc, out, err = s_client(lb.port(), "unknown.test")
        self.assertIn("unrecognized name", (out + err).lower())
        self.assertEqual(backend.connections, 0)

    def test_not_tls_is_closed_without_contacting_a_backend(self):
        backend = self.server(RawBackend("echo"))
        lb = self.ringlb(config([("p", [("b", backend.address)], "")], [("alpha.test", "p", None)],
                                'default_pool = "p"'))
        s = socket.create_connection(("127.0.0.1", lb.port()), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(s.recv(100), b"")
        s.close()
        self.assertEqual(backend.connections, 0)
        self.assertIn("end=not_tls", self.stop_ringlb(lb))


if __name__ == "__main__":
    unittest.main()
