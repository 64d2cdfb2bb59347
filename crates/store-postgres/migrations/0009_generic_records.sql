-- Records of any declared collection (issue 21): `kind` holds the
-- collection's name, no longer one of three, and the two reference columns
-- are named for what they hold in any schema. `root_id` is the sharing root
-- the record names (a space's id for a category or an item: what
-- `space_id` held), `parent_id` its nearest parent that is not a root (an
-- item's category: what `category_id` held). The data is unchanged.
ALTER TABLE records DROP CONSTRAINT IF EXISTS records_kind_check;
ALTER TABLE records RENAME COLUMN space_id TO root_id;
ALTER TABLE records RENAME COLUMN category_id TO parent_id;
ALTER INDEX records_by_space RENAME TO records_by_root;
ALTER INDEX records_by_category RENAME TO records_by_parent;
