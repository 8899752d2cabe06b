-- Reverses 003. Z_val rows lose their source.
DROP TRIGGER candidates_truncate_selection ON tov.candidates;
DROP TRIGGER selection_item_cascaded ON tov.selection_items;
DROP FUNCTION tov.candidates_truncate_selection();
DROP FUNCTION tov.selection_item_cascaded();
ALTER TABLE tov.validation DROP COLUMN source;
