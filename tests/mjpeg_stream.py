"""A camera stream for the live-source tests: MJPEG over HTTP (``multipart/x-mixed-replace`` JPEG frames, what
many IP cameras serve), looping over the frames it is given, that can be killed and started again on its port."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import cv2
import numpy as np

BOUNDARY = "frame"


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


class MjpegStream:
    """``url`` serves ``frames`` (JPEG bytes) at ``fps``, looping, to every client until :meth:`kill`, which
    drops every connection and stops listening; :meth:`start` listens again on the same port. While ``stalled``,
    connections stay open and nothing is sent."""

    def __init__(self, frames: list[bytes], fps: float = 10.0):
        self.frames, self.fps = frames, fps
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.server: http.server.ThreadingHTTPServer | None = None
        self.clients: list[socket.socket] = []
        self.sent = 0
        self.stalled = False

    def start(self) -> MjpegStream:
        stream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                stream.clients.append(self.connection)
                try:
                    for i in range(1 << 30):
                        while stream.stalled:  # connected, sending nothing
                            time.sleep(0.05)
                        data = stream.frames[i % len(stream.frames)]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}"
                                         f"\r\n\r\n".encode() + data + b"\r\n")
                        stream.sent += 1
                        time.sleep(1 / stream.fps)
                except OSError:  # the client left, or the stream was killed
                    pass

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def kill(self) -> None:
        """Stop listening and cut every open connection (as a camera that loses power)."""
        self.server.shutdown()
        self.server.server_close()
        for client in self.clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()
        self.clients = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
