"""squall-bare-server (reference/bench/bare_server.cc), the floor of the load comparison:
a deep pipeline whose replies the socket cannot take at once is still answered in full.
The server registers a connection for room to write only once a write is partial, so a
lost EPOLLOUT registration shows here as replies that stop coming (a timeout). Starts the
real program on 127.0.0.1 and stops it by PID; a few seconds. Run:
    SQUALL_BIN=build/release/reference /usr/bin/python3 -m unittest discover -s load/tests -p 'test_bare_server.py'
"""
import os
import socket
import threading
import time
import unittest

from squall_load import impls
from test_run import SQUALL_BIN

BARE = os.path.join(SQUALL_BIN, "squall-bare-server")
REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
REPLY_BODY = b"Hello, World!"


@unittest.skipUnless(os.access(BARE, os.X_OK), f"needs {BARE} (ninja -C build/release squall-bare-server)")
class DeepPipeline(unittest.TestCase):
    def setUp(self):
        # Started as the load runner starts it (its description, load/implementations/bare.toml).
        self.server = impls.start(impls.resolve("bare"), squall_bin=SQUALL_BIN)
        self.addCleanup(self.server.stop)
        self.port = self.server.port

    def test_replies_that_fill_the_socket_all_arrive(self):
        # ~30 MB of replies: more than loopback's socket buffers hold, so writes go partial
        # while the client is not reading, and the rest must follow on EPOLLOUT.
        count = 200_000
        client = socket.create_connection(("127.0.0.1", self.port))
        self.addCleanup(client.close)
        sender = threading.Thread(target=client.sendall, args=(REQUEST * count,), daemon=True)
        sender.start()
        time.sleep(0.5)  # not reading meanwhile: the server's writes hit EAGAIN
        client.settimeout(10)
        received, tail = 0, b""
        while received < count:
            data = client.recv(1 << 20)
            if not data:
                break
            chunk = tail + data
            received += chunk.count(REPLY_BODY)
            tail = chunk[-(len(REPLY_BODY) - 1):]
        sender.join(timeout=10)
        self.assertEqual(received, count)


if __name__ == "__main__":
    unittest.main()
