"""Time as a dependency: the server reads the clock only through a ``Clock``.

A clock is any callable returning Unix time in seconds. Production uses :func:`time.time`;
tests hand ``create_app`` a clock they can move forward to expire challenges and tokens
without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]

system_clock: Clock = time.time
