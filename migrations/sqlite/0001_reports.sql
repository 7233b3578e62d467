-- Canonical state: one merged Automerge document per report.
CREATE TABLE documents (
    report_id      TEXT PRIMARY KEY NOT NULL,
    doc            BLOB NOT NULL,
    heads          TEXT NOT NULL,          -- space-separated hex change hashes
    schema_version INTEGER NOT NULL,
    change_count   INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL        -- ms since epoch, server clock
) STRICT;

-- Derived state: the SQL projection of each document, rewritten in the same transaction.
CREATE TABLE reports (
    id                TEXT PRIMARY KEY NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    title             TEXT NOT NULL,
    what_happened     TEXT NOT NULL,
    category          TEXT NOT NULL,
    severity          TEXT NOT NULL,
    severity_rank     INTEGER NOT NULL,
    status            TEXT NOT NULL,
    occurred_at       INTEGER NOT NULL,
    reported_at       INTEGER NOT NULL,
    place             TEXT NOT NULL,
    latitude          REAL,
    longitude         REAL,
    accuracy_m        REAL,
    reporter          TEXT NOT NULL,
    people_involved   TEXT NOT NULL,        -- JSON array of names
    immediate_actions TEXT NOT NULL,
    conflict_count    INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX reports_by_reported_at ON reports (reported_at DESC);
CREATE INDEX reports_by_status ON reports (status);
