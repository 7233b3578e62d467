-- Whether a report has ever been an injury or illness report (or held injury details).
-- Its document's history then holds privacy-sensitive details, so only people who may
-- read those hold it on a device (see Viewer::can_hold). Once set it is never cleared:
-- changing the category later does not remove the details from the history.
ALTER TABLE reports ADD COLUMN sensitive BIGINT NOT NULL DEFAULT 0;
UPDATE reports SET sensitive = 1 WHERE category = 'injury_illness';
