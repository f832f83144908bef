-- Ids are UUIDv7 strings: time-ordered, so ORDER BY id is creation order and
-- keyset paging on id needs no second column.
CREATE TABLE characters (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    system_prompt TEXT,
    post_history_instructions TEXT,
    first_message TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE user_profiles (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Characters and profiles cannot be deleted while chats use them (RESTRICT):
-- deleting them must never take stored messages along silently.
CREATE TABLE chat_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    character_id TEXT NOT NULL REFERENCES characters (id) ON DELETE RESTRICT,
    user_profile_id TEXT NOT NULL REFERENCES user_profiles (id) ON DELETE RESTRICT,
    title TEXT NOT NULL,
    model TEXT,
    temperature DOUBLE,
    max_tokens INTEGER,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX chat_sessions_character_id ON chat_sessions (character_id);
CREATE INDEX chat_sessions_user_profile_id ON chat_sessions (user_profile_id);

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    chat_session_id TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    error TEXT,
    stream_id TEXT,
    finish_reason TEXT,
    duration_ms BIGINT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX messages_chat_session_id_id ON messages (chat_session_id, id);
CREATE UNIQUE INDEX messages_stream_id ON messages (stream_id);
CREATE INDEX messages_status ON messages (status);

-- Key-value settings. Secret values are stored encrypted (see src/secrets.rs).
CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
