-- Report categories, as administrators define them. The key is stored in report
-- documents and never changes; the label is what people see. A retired category
-- (active = 0) is no longer offered for new reports but stays on the reports
-- that have it. Devices receive the list with sync and keep it, so the report form
-- offers it offline.
CREATE TABLE categories (
    key        TEXT PRIMARY KEY NOT NULL,
    label      TEXT NOT NULL,
    position   INTEGER NOT NULL,
    active     BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

INSERT INTO categories (key, label, position, active, updated_at) VALUES
    ('injury_illness', 'Injury or illness', 1, 1, 0),
    ('near_miss', 'Near miss', 2, 1, 0),
    ('property_damage', 'Property damage', 3, 1, 0),
    ('environmental_release', 'Environmental release', 4, 1, 0),
    ('security', 'Security', 5, 1, 0),
    ('vehicle', 'Vehicle', 6, 1, 0),
    ('equipment_failure', 'Equipment failure', 7, 1, 0),
    ('operational_outage', 'Operational outage', 8, 1, 0),
    ('other', 'Other', 9, 1, 0);
