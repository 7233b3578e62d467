-- Corrective and preventive actions, projected from each report's document (its
-- response.actions) in the same transaction as the report, so "my actions" lists them
-- without reading documents. Rewritten whole for a report whenever it is merged.
CREATE TABLE actions (
    report_id  TEXT NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    action_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    text       TEXT NOT NULL,
    owner_id   TEXT,                 -- user id, NULL while nobody owns it
    due_at     INTEGER,               -- ms since epoch
    state      TEXT NOT NULL,
    check_state TEXT NOT NULL,
    PRIMARY KEY (report_id, action_id)
);
CREATE INDEX actions_by_owner ON actions (owner_id, due_at);
