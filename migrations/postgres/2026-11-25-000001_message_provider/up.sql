ALTER TABLE messages ADD COLUMN provider TEXT;
