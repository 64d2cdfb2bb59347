-- Every push rewrites its scopes' counters. Room left in each page lets
-- those updates be HOT (no index entry; `version` is not indexed), instead
-- of moving each new row version to another page and adding a primary key
-- entry. Rows are small, so the cost is a table twice as large. Applies to
-- pages written from now on. (`records` gets no fillfactor: its `version`
-- is indexed for the pull, so no update of a record can be HOT.)
ALTER TABLE scopes SET (fillfactor = 50);
