-- Reverses 001. The roles tov_writer and tov_reader are cluster-wide and may be granted in other
-- databases, so they are left in place; drop them by hand once no database uses them.
DROP SCHEMA tov CASCADE;
