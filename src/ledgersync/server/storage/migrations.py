"""Schema migrations, applied in order at start, each exactly once per database.

To change the schema, append a :class:`Migration` with the next version number; never edit
one that has shipped. Statements use ``{blob}`` for binary columns (``BLOB`` on SQLite,
``BYTEA`` on PostgreSQL) and otherwise stick to types both accept (``TEXT``, ``INTEGER``,
``BIGINT``, ``BOOLEAN``). The table ``schema_migrations`` records what has run.

Several processes may start together: PostgreSQL takes a transaction-scoped advisory lock
before looking at ``schema_migrations``; SQLite's ``BEGIN IMMEDIATE`` already serialises them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .database import Database

#: Arbitrary constant naming ledgersync's migration lock among PostgreSQL advisory locks.
_ADVISORY_LOCK_ID = 0x4C534D47  # "LSMG"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "key ring: challenges, trustchains, streams, blocks, stream members",
        (
            """CREATE TABLE challenges (
                data {blob} PRIMARY KEY,
                expires_at BIGINT NOT NULL
            )""",
            """CREATE TABLE trustchains (
                id TEXT PRIMARY KEY,
                root_issuer {blob} NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            "CREATE INDEX trustchains_root_issuer ON trustchains (root_issuer)",
            """CREATE TABLE deleted_trustchains (
                id TEXT PRIMARY KEY,
                deleted_at BIGINT NOT NULL
            )""",
            """CREATE TABLE streams (
                trustchain_id TEXT NOT NULL REFERENCES trustchains (id) ON DELETE CASCADE,
                path TEXT NOT NULL,
                application_id BIGINT,
                application_index BIGINT,
                height INTEGER NOT NULL,
                last_hash {blob} NOT NULL,
                closed BOOLEAN NOT NULL,
                PRIMARY KEY (trustchain_id, path)
            )""",
            """CREATE TABLE blocks (
                trustchain_id TEXT NOT NULL,
                path TEXT NOT NULL,
                height INTEGER NOT NULL,
                data {blob} NOT NULL,
                PRIMARY KEY (trustchain_id, path, height),
                FOREIGN KEY (trustchain_id, path)
                    REFERENCES streams (trustchain_id, path) ON DELETE CASCADE
            )""",
            """CREATE TABLE stream_members (
                trustchain_id TEXT NOT NULL,
                path TEXT NOT NULL,
                member {blob} NOT NULL,
                PRIMARY KEY (trustchain_id, path, member),
                FOREIGN KEY (trustchain_id, path)
                    REFERENCES streams (trustchain_id, path) ON DELETE CASCADE
            )""",
            "CREATE INDEX stream_members_member ON stream_members (member)",
        ),
    ),
    Migration(
        2,
        "cloud sync: documents; QR relay seats shared by server processes",
        (
            """CREATE TABLE documents (
                slug TEXT NOT NULL,
                trustchain_id TEXT NOT NULL,
                path TEXT NOT NULL,
                version BIGINT NOT NULL,
                payload TEXT NOT NULL,
                updated_at BIGINT NOT NULL,
                info TEXT,
                PRIMARY KEY (slug, trustchain_id, path)
            )""",
            "CREATE INDEX documents_trustchain ON documents (trustchain_id)",
            """CREATE TABLE relay_seats (
                seat TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                seen_at BIGINT NOT NULL
            )""",
            "CREATE INDEX relay_seats_host ON relay_seats (host)",
        ),
    ),
    Migration(
        3,
        "cloud sync: no document at a closed stream's path (closing a stream now deletes them)",
        (
            """DELETE FROM documents WHERE EXISTS (
                SELECT 1 FROM streams s
                WHERE s.trustchain_id = documents.trustchain_id
                AND s.path = documents.path AND s.closed
            )""",
        ),
    ),
    Migration(
        4,
        "key ring: index challenges by expiry (the sweep of expired challenges)",
        ("CREATE INDEX challenges_expires_at ON challenges (expires_at)",),
    ),
    Migration(
        5,
        "key ring: challenges are vouched for by their signature and expiry, not stored;"
        " only used ones are recorded, so that each is answered once",
        (
            """CREATE TABLE used_challenges (
                data {blob} PRIMARY KEY,
                expires_at BIGINT NOT NULL
            )""",
            "CREATE INDEX used_challenges_expires_at ON used_challenges (expires_at)",
            "DROP TABLE challenges",
        ),
    ),
)


async def apply_migrations(
    database: Database, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply the migrations this database has not seen; returns their versions."""
    applied: list[int] = []
    async with database.transaction() as connection:
        if database.dialect == "postgresql":
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_LOCK_ID)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL)"
        )
        rows = await connection.fetch("SELECT version FROM schema_migrations")
        done = {int(row[0]) for row in rows}
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            for statement in migration.statements:
                await connection.execute(statement.format(**database.types))
            await connection.execute(
                "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                migration.version,
                migration.description,
            )
            applied.append(migration.version)
    return applied
