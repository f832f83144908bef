DROP TABLE message_alternatives;
ALTER TABLE messages DROP COLUMN edited_at;
ALTER TABLE messages DROP COLUMN alternative_count;
ALTER TABLE messages DROP COLUMN alternative_index;
