-- Reverses 006.
SELECT 1;
