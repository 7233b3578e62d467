-- The same schema as migrations/sqlite (0001 + 0002), in PostgreSQL's types.

-- Canonical state: one merged Automerge document per report.
CREATE TABLE documents (
    report_id      TEXT PRIMARY KEY NOT NULL,
    doc            BYTEA NOT NULL,
    heads          TEXT NOT NULL,          -- space-separated hex change hashes
    schema_version BIGINT NOT NULL,
    change_count   BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,        -- ms since epoch, server clock
    seq            BIGINT NOT NULL         -- feed sequence number of the last change
);
CREATE INDEX documents_by_seq ON documents (seq);

-- Derived state: the SQL projection of each document, rewritten in the same transaction.
CREATE TABLE reports (
    id                TEXT PRIMARY KEY NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    title             TEXT NOT NULL,
    what_happened     TEXT NOT NULL,
    category          TEXT NOT NULL,
    severity          TEXT NOT NULL,
    severity_rank     BIGINT NOT NULL,
    status            TEXT NOT NULL,
    occurred_at       BIGINT NOT NULL,
    reported_at       BIGINT NOT NULL,
    place             TEXT NOT NULL,
    latitude          DOUBLE PRECISION,
    longitude         DOUBLE PRECISION,
    accuracy_m        DOUBLE PRECISION,
    reporter          TEXT NOT NULL,
    people_involved   TEXT NOT NULL,        -- JSON array of names
    immediate_actions TEXT NOT NULL,
    conflict_count    BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX reports_by_reported_at ON reports (reported_at DESC);
CREATE INDEX reports_by_status ON reports (status);

-- One row; locked by every committing transaction until it commits, so feed numbers
-- become visible in increasing order across server instances.
CREATE TABLE sync_counter (
    id  BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO sync_counter (id, seq) VALUES (1, 0);

-- Which reports each device follows, and the heads the server last knew it to hold.
CREATE TABLE following (
    device_id   TEXT NOT NULL,
    report_id   TEXT NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    known_heads TEXT NOT NULL,
    PRIMARY KEY (device_id, report_id)
);

-- Documents whose stored copy cannot be merged: listed for an administrator, never served.
CREATE TABLE quarantine (
    report_id   TEXT PRIMARY KEY NOT NULL,
    reason      TEXT NOT NULL,
    detected_at BIGINT NOT NULL
);
