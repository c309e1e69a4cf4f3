"""A backend process for health and lifecycle tests: echoes plain connections, and answers
HTTP health requests (a first line starting with "GET " or "HEAD ").

  echo_backend.py [--port N] [--name NAME] [--health-status CODE] [--hang-health]

Prints "LISTENING <port>" once listening, and "ECHO <n>" after each echoed connection (so a
test can see traffic reaching it). --hang-health: accept health requests and never answer.
"""
import argparse
import socket
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--name", default="backend")
parser.add_argument("--health-status", type=int, default=200)
parser.add_argument("--hang-health", action="store_true")
args = parser.parse_args()

lock = threading.Lock()
echoed = 0


def serve(conn):
    global echoed
    try:
        data = conn.recv(65536)
        if data.startswith((b"GET ", b"HEAD ")):
            if args.hang_health:
                conn.settimeout(60)
                while conn.recv(65536):
                    pass
                return
            body = f"{args.name} ok\n".encode()
            conn.sendall(f"HTTP/1.1 {args.health_status} X\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)
            return
        if not data:
            return  # a TCP health check: connected and closed
        while data:
            conn.sendall(data)
            data = conn.recv(65536)
        with lock:
            echoed += 1
            n = echoed
        print(f"ECHO {n}", flush=True)
    except OSError:
        pass
    finally:
        conn.close()


sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
for attempt in range(50):  # a restart on the same port may race the old socket's close
    try:
        sock.bind(("127.0.0.1", args.port))
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"cannot bind port {args.port}")
sock.listen(1024)
print(f"LISTENING {sock.getsockname()[1]}", flush=True)
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
