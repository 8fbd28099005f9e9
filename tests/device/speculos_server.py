"""A small Speculos look-alike for tests: its TCP APDU framing in front of an emulator.

Written independently of ``ledgersync.device.speculos`` (from Speculos's protocol: request
``len(4) ‖ apdu``, response ``len(4) ‖ data ‖ sw(2)`` with the length counting the data
only), so that the client's framing is checked against something it does not share.
"""

import socket
import socketserver
import threading


def _read_exactly(connection, size):
    chunks = b""
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return chunks


class _ApduHandler(socketserver.BaseRequestHandler):
    def setup(self):
        # The split response below must not wait for the client's delayed ACK (Nagle).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self):
        while True:
            length = _read_exactly(self.request, 4)
            if length is None:
                return
            apdu = _read_exactly(self.request, int.from_bytes(length, "big"))
            if apdu is None:
                return
            response = self.server.answer(apdu)
            if response is None:  # simulate a crash mid-exchange
                self.request.shutdown(socket.SHUT_RDWR)
                return
            data, status = response[:-2], response[-2:]
            # Sent in two writes so that the client has to reassemble the frame.
            self.request.sendall(len(data).to_bytes(4, "big") + data[:3])
            self.request.sendall(data[3:] + status)


class SpeculosServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer):
        """``answer(apdu) -> data ‖ SW`` (or None to drop the connection)."""
        self.answer = answer
        super().__init__(("127.0.0.1", 0), _ApduHandler)
        # A short poll keeps shutdown() quick; nothing waits on it otherwise.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self):
        return self.server_address[1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.shutdown()
        self.server_close()
        self._thread.join()
