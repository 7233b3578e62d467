-- When the server received each change of a report, and from whom: a device's clock
-- (the change's own timestamp) can be wrong or set back, so the history shows both, and
-- the server's time is the one evidence relies on. Also what a person sent per day.
CREATE TABLE change_receipts (
    report_id   TEXT NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,              -- the change's hash, hex
    received_at INTEGER NOT NULL,           -- ms since epoch, server clock
    user_id     TEXT,                       -- who pushed it (none: written by the server itself)
    session_id  TEXT,                       -- from which sign-in (none: the desk)
    bytes       INTEGER NOT NULL,           -- its encoded size
    PRIMARY KEY (report_id, hash)
);
CREATE INDEX change_receipts_by_person ON change_receipts (user_id, received_at);
