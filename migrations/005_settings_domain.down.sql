-- Reverses 005.
SELECT 1;
