-- Every edit rewrites a report's projection row and what the device holds. Leaving a
-- quarter of each page free lets PostgreSQL update these rows in place on the same page
-- (heap-only tuples), without a new entry in every index of the table.
ALTER TABLE reports SET (fillfactor = 75);
ALTER TABLE following SET (fillfactor = 75);
