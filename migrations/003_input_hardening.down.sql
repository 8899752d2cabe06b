-- Reverses 003.
SELECT 1;
