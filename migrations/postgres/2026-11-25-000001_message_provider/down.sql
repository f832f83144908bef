ALTER TABLE messages DROP COLUMN provider;
