-- When the server received the changes of a report, and from whom: a device's clock
-- (each change's own timestamp) can be wrong or set back, so the history shows both, and
-- the server's time is the one evidence relies on. Also what a person sent per day. One
-- row per report per accepted sync, naming the changes it brought.
CREATE TABLE change_receipts (
    report_id   TEXT NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    received_at INTEGER NOT NULL,           -- ms since epoch, server clock
    user_id     TEXT,                       -- who pushed them (none: written by the server itself)
    session_id  TEXT,                       -- from which sign-in (none: the desk)
    bytes       INTEGER NOT NULL,           -- their encoded size
    hashes      TEXT NOT NULL               -- the changes' hashes, hex, space-separated
);
CREATE INDEX change_receipts_by_report ON change_receipts (report_id);
CREATE INDEX change_receipts_by_person ON change_receipts (user_id, received_at);
