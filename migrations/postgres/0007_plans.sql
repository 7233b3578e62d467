-- Response plans, one per category: ordered steps, each for a role, as JSON
-- ([{"id", "role", "text"}], see app::domain::plan). Devices fetch them all
-- (GET /api/plans) and keep them, so they open offline.
CREATE TABLE plans (
    category   TEXT PRIMARY KEY NOT NULL,
    steps      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
