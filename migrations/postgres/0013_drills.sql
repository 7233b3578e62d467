-- Drills (app::domain::drill). A report's kind follows its document's `drill` key, which
-- is written only when the report is created: real reports have none.
ALTER TABLE reports ADD COLUMN kind TEXT NOT NULL DEFAULT 'real';  -- 'real' or 'drill'
ALTER TABLE reports ADD COLUMN drill_id TEXT;                      -- the drill it was filed in
CREATE INDEX reports_by_drill ON reports (drill_id);

-- Scenarios a team rehearses; every device of the team keeps them.
CREATE TABLE scenarios (
    id         TEXT PRIMARY KEY NOT NULL,
    team_id    TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    category   TEXT NOT NULL,                -- the category whose plan it exercises
    objectives TEXT NOT NULL,                -- JSON array of text
    injects    TEXT NOT NULL,                -- JSON [{"at_s", "role"?, "text"}], earliest first
    version    BIGINT NOT NULL,             -- 1, then one more with every change
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX scenarios_by_team ON scenarios (team_id);

-- A scenario scheduled for its team; its id is also its run's id.
CREATE TABLE drills (
    id           TEXT PRIMARY KEY NOT NULL,
    scenario_id  TEXT NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    team_id      TEXT NOT NULL,
    opens_at     BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    cadence      TEXT NOT NULL,              -- once, monthly, quarterly, yearly
    completed_at BIGINT,                     -- when its run was completed
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL
);
CREATE INDEX drills_by_team ON drills (team_id, due_at);

-- What phones recorded during runs. The id is made on the phone, so a retried upload is
-- stored once; the person comes from the session that sent it.
CREATE TABLE drill_events (
    id          TEXT PRIMARY KEY NOT NULL,
    drill_id    TEXT NOT NULL REFERENCES drills(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    what        TEXT NOT NULL,               -- started, acknowledged, ended, stopped_for_real
    inject      BIGINT,                      -- the inject's index, when acknowledged
    at          BIGINT NOT NULL,            -- the phone's clock
    received_at BIGINT NOT NULL             -- the server's clock
);
CREATE INDEX drill_events_by_drill ON drill_events (drill_id);

-- After-action reviews: each objective's rating, strengths, areas for improvement.
CREATE TABLE drill_reviews (
    drill_id     TEXT PRIMARY KEY NOT NULL REFERENCES drills(id) ON DELETE CASCADE,
    ratings      TEXT NOT NULL,              -- JSON [{"objective", "rating"}]
    strengths    TEXT NOT NULL,
    improvements TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT NOT NULL
);

-- The improvement plan: corrective and preventive actions of a drill, listed in their
-- owners' "My actions" with those of real incidents.
CREATE TABLE drill_actions (
    action_id   TEXT PRIMARY KEY NOT NULL,
    drill_id    TEXT NOT NULL REFERENCES drills(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    owner_id    TEXT,
    due_at      BIGINT,
    state       TEXT NOT NULL,
    check_state TEXT NOT NULL,
    check_note  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX drill_actions_by_owner ON drill_actions (owner_id, due_at);
CREATE INDEX drill_actions_by_drill ON drill_actions (drill_id);
