-- The feed: every stored document carries the sequence number of its last change, taken
-- from a single counter row (locked until commit, so numbers appear in commit order).
ALTER TABLE documents ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE documents SET seq = rowid;
CREATE INDEX documents_by_seq ON documents (seq);

CREATE TABLE sync_counter (
    id  INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO sync_counter (id, seq) SELECT 1, COALESCE(MAX(seq), 0) FROM documents;

-- Which reports each device follows, and the heads the server last knew it to hold.
CREATE TABLE following (
    device_id   TEXT NOT NULL,
    report_id   TEXT NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    known_heads TEXT NOT NULL,             -- space-separated hex change hashes
    PRIMARY KEY (device_id, report_id)
) STRICT, WITHOUT ROWID;

-- Documents whose stored copy cannot be merged: listed for an administrator, never served.
CREATE TABLE quarantine (
    report_id   TEXT PRIMARY KEY NOT NULL,
    reason      TEXT NOT NULL,
    detected_at INTEGER NOT NULL
) STRICT;
