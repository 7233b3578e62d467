-- Photos of reports. The bytes are stored once per SHA-256 (content addressing: an upload
-- retried or repeated never makes a second copy); a report may show a photo only once a
-- whole upload of it for that report was verified (report_photos), so knowing a hash
-- opens nothing.
CREATE TABLE photos (
    sha256     TEXT PRIMARY KEY NOT NULL,
    bytes      BLOB NOT NULL,
    size       INTEGER NOT NULL,
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    created_at INTEGER NOT NULL          -- ms since epoch, server clock
);

CREATE TABLE report_photos (
    report_id  TEXT NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL REFERENCES photos(sha256),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (report_id, sha256)
);

-- Uploads in progress: the chunks received so far, each at the offset it starts at (the
-- next is accepted only at the end of what is held, so they are contiguous). Removed when
-- the photo is stored or refused; abandoned ones after a week.
CREATE TABLE photo_chunks (
    report_id  TEXT NOT NULL REFERENCES documents(report_id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    start_at   INTEGER NOT NULL,
    bytes      BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (report_id, sha256, start_at)
);
CREATE INDEX photo_chunks_by_age ON photo_chunks (created_at);
