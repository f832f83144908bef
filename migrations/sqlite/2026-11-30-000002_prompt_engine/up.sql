-- The prompt engine: sampler settings per chat and per character (JSON text
-- in the shape of src/samplers.rs; "{}" is none set), the chat's context
-- length and author's note, and listing chats by last activity.
ALTER TABLE chat_sessions ADD COLUMN samplers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE chat_sessions ADD COLUMN context_tokens INTEGER;
ALTER TABLE chat_sessions ADD COLUMN authors_note TEXT NOT NULL DEFAULT '';
ALTER TABLE chat_sessions ADD COLUMN authors_note_depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE characters ADD COLUMN samplers TEXT NOT NULL DEFAULT '{}';
CREATE INDEX chat_sessions_user_id_updated_at ON chat_sessions (user_id, updated_at, id);
