-- Prioritisation: the projected priority (1 = P1 … 5 = P5, see app::domain::priority) and,
-- while a regulatory clock runs, when the report to the authority is due (ms since epoch).
-- Rows stored before this read as P1 ("not judged" counts as high) until their next merge.
ALTER TABLE reports ADD COLUMN priority_rank INTEGER NOT NULL DEFAULT 1;
ALTER TABLE reports ADD COLUMN report_due_at INTEGER;
CREATE INDEX reports_by_priority ON reports (priority_rank);
