-- Reverses 016: checkpoints go back to the default storage (EXTENDED: compressed when it helps).
ALTER TABLE tov.checkpoints ALTER COLUMN data SET STORAGE EXTENDED;
ALTER TABLE tov.theta0s ALTER COLUMN data SET STORAGE EXTENDED;
