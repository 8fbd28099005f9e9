"""The Key Ring API (the "trustchain backend"), wire-compatible with Ledger Live.

* :mod:`.handlers`: thin HTTP/websocket handlers, listed in :mod:`ledgersync.server.routes`;
* :mod:`.auth`: challenges, authentication, refresh, token checks;
* :mod:`.trustchains`: reading and writing trustchains, authorization;
* :mod:`.validation`: what received blocks must satisfy (pure);
* :mod:`.permissions`: the ``permissions`` object of tokens (pure);
* :mod:`.qr`: the QR-pairing websocket relay;
* :mod:`.context`: the dependencies shared by the above (:class:`KeyRing`).
"""
