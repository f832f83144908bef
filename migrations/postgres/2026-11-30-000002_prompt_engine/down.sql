DROP INDEX chat_sessions_user_id_updated_at;
ALTER TABLE characters DROP COLUMN samplers;
ALTER TABLE chat_sessions DROP COLUMN authors_note_depth;
ALTER TABLE chat_sessions DROP COLUMN authors_note;
ALTER TABLE chat_sessions DROP COLUMN context_tokens;
ALTER TABLE chat_sessions DROP COLUMN samplers;
