"""``ledgersync serve``: run the Key Ring and Cloud Sync server."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default=None, help="Interface to listen on [LEDGERSYNC_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [LEDGERSYNC_PORT, 8080].")
@click.option(
    "--database",
    default=None,
    help="sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite or "
    "postgresql://user:password@host:port/database "
    "[LEDGERSYNC_DATABASE, sqlite:///data/ledgersync.sqlite].",
)
@click.option(
    "--public-url",
    default=None,
    help="URL clients use to reach the server [LEDGERSYNC_PUBLIC_URL, http://localhost:8080].",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default=None,
    help="json lines, or text with a start-up banner; auto: text on a terminal "
    "[LEDGERSYNC_LOG_FORMAT, auto].",
)
@click.option(
    "--metrics-address",
    default=None,
    metavar="HOST:PORT",
    help="Serve /metrics only there, on a second listener, not on --port "
    "[LEDGERSYNC_METRICS_ADDRESS; its bearer token: LEDGERSYNC_METRICS_TOKEN].",
)
def serve(
    host: str | None,
    port: int | None,
    database: str | None,
    public_url: str | None,
    log_format: str | None,
    metrics_address: str | None,
) -> None:
    """Serve the Key Ring API and the Cloud Sync API (other settings: LEDGERSYNC_* variables)."""
    from ..server import ServerConfig, run
    from ..server.config import ConfigError
    from ..server.run import StartupError

    try:
        config = ServerConfig.from_env(
            host=host,
            port=port,
            database=database,
            public_url=public_url,
            log_format=log_format,
            metrics_address=metrics_address,
        )
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        run(config)
    except StartupError as exc:
        raise click.ClickException(f"cannot start: {exc}") from exc
