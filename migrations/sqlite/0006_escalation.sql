-- Escalation (see server::webhook and Store::escalate): each priority a report reaches at
-- P1 or P2 is recorded once, in the transaction that merged it; that notifies the
-- report's team's supervisors (in-app, delivered with sync) and queues one webhook
-- delivery (a transactional outbox: nothing is sent for a merge that did not commit).
CREATE TABLE escalations (
    report_id     TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,
    raised_at     INTEGER NOT NULL,
    notified      INTEGER NOT NULL DEFAULT 0,   -- 1 once its notifications and delivery exist
    PRIMARY KEY (report_id, priority_rank)
) STRICT;
CREATE INDEX escalations_pending ON escalations (notified);

CREATE TABLE notifications (
    id            TEXT PRIMARY KEY NOT NULL, -- report:rank:user, so never twice
    user_id       TEXT NOT NULL,
    report_id     TEXT NOT NULL,
    priority_rank INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    read_at       INTEGER
) STRICT;
CREATE INDEX notifications_by_user ON notifications (user_id, read_at, created_at);

-- One outgoing webhook delivery per escalation, and its log: attempts so far, when to try
-- next, the last answer. The body is fixed at the first attempt (then signed per attempt).
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY NOT NULL, -- report:rank
    report_id       TEXT NOT NULL,
    priority_rank   INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    body            TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_status     INTEGER,
    last_error      TEXT
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (delivered_at, next_attempt_at);
