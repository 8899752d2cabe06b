-- Reverses 004.
SELECT 1;
