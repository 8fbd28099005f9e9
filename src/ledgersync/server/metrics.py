"""Prometheus metrics, in a registry owned by each app (several apps can live in one process).

Labels never carry identifiers (trustchain ids, keys, addresses): routes are reported by
their template (``/v1/trustchain/{trustchain_id}``), unmatched paths as ``unmatched``.
In a multi-process deployment each process serves its own counters, and its own process
figures (CPU seconds, resident memory, open files: ``process_*``, from ``/proc`` on Linux)
and its garbage collector's (``python_gc_*``; ``ledgersync_gc_frozen_objects``, what start-up
left out of the collector's work, see :mod:`.run`).
"""

from __future__ import annotations

import gc

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # The process's own figures, read at each scrape: process_cpu_seconds_total,
        # process_resident_memory_bytes, process_open_fds (and their limits), python_info.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        # Collections and collected objects per generation, and the objects frozen at start-up.
        GCCollector(registry=self.registry)
        Gauge(
            "ledgersync_gc_frozen_objects",
            "Objects of the server's start-up that the garbage collector no longer scans",
            registry=self.registry,
        ).set_function(gc.get_freeze_count)
        self.http_requests = Counter(
            "ledgersync_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "ledgersync_http_request_duration_seconds",
            "HTTP request handling time, by route template",
            ["route"],
            registry=self.registry,
        )
        self.logins = Counter(
            "ledgersync_logins",
            "Authentication attempts, by kind (device, member) and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.trustchains_created = Counter(
            "ledgersync_trustchains_created", "Trustchains created", registry=self.registry
        )
        self.trustchains_deleted = Counter(
            "ledgersync_trustchains_deleted", "Trustchains deleted", registry=self.registry
        )
        self.blocks_stored = Counter(
            "ledgersync_blocks_stored", "Blocks accepted and stored", registry=self.registry
        )
        self.blocks_rejected = Counter(
            "ledgersync_blocks_rejected",
            "Requests whose blocks were refused, by rule",
            ["rule"],
            registry=self.registry,
        )
        self.connections_open = Gauge(
            "ledgersync_connections_open",
            "Open client connections (HTTP and websockets) of this process",
            registry=self.registry,
        )
        self.connections_closed = Counter(
            "ledgersync_connections_closed",
            "Connections closed or refused by the server's bounds, by reason (idle,"
            " header_timeout, body_timeout, headers_too_large, evicted_idle, refused_limit,"
            " refused_per_client)",
            ["reason"],
            registry=self.registry,
        )
        self.qr_rooms = Gauge(
            "ledgersync_qr_rooms", "Open QR-pairing relay rooms", registry=self.registry
        )
        self.qr_frames = Counter(
            "ledgersync_qr_frames_relayed",
            "Frames relayed between QR peers",
            registry=self.registry,
        )

        self.cloudsync_writes = Counter(
            "ledgersync_cloudsync_writes",
            "Cloud Sync writes, by outcome (updated, out-of-sync)",
            ["outcome"],
            registry=self.registry,
        )
        self.cloudsync_subscribers = Gauge(
            "ledgersync_cloudsync_subscribers",
            "Open Cloud Sync notification sockets in this process",
            registry=self.registry,
        )
        self.cloudsync_notifications = Counter(
            "ledgersync_cloudsync_notifications",
            "Versions pushed to Cloud Sync subscribers by this process",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
