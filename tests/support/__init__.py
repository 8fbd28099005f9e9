"""What the test suites share, by concept (conftest files hold fixtures only):

* :mod:`.vectors`: the LKRP test vectors (``tests/data``);
* :mod:`.servers`: the real server in the test process (:class:`~.servers.RunningServer`, with a
  :class:`~.servers.ManualClock`) and in a child process on a socket the test holds
  (:class:`~.servers.HeldSocketServer`, a :class:`ledgersync.testing.LocalServer`);
* :mod:`.keyring`: Key Ring clients: logins, trustchains built with the protocol layer;
* :mod:`.cloudsync`: Cloud Sync clients: a logged-in member, ``/atomic`` calls, notifications;
* :mod:`.payloads` and :mod:`.tokens`: base64 payloads, JWT segments;
* :mod:`.http`: raw HTTP over a socket, for requests an HTTP client would not send;
* :mod:`.logs`: the log records of the process, and waiting for one;
* :mod:`.devices`: devices of each kind (software, APDU), approvals, scripted randomness;
* :mod:`.instances`: SDK instances (one Ledger Live install each), :mod:`.network`: a proxy
  the test can cut, :mod:`.world`: a populated server for the security suite,
  :mod:`.wallets`: wallet factories.

``DEADLINE`` is the longest a test waits for something that should happen at once (or within
a timeout): tests wait for events, never for time.
"""

#: Longest a test waits for something that should happen at once (never a sleep).
DEADLINE = 10.0
