-- Users own everything else. Tokens are stored as their SHA-256 (hex):
-- token_lookup is its first 16 hex digits, found by index; the whole hash
-- is then compared in constant time, so lookup timing reveals nothing.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL,
    token_lookup TEXT,
    token_hash TEXT,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX users_name ON users (name);
CREATE UNIQUE INDEX users_token_lookup ON users (token_lookup);

-- The built-in user of single-user mode (no tokens issued yet), and the
-- owner of everything stored before users existed.
INSERT INTO users (id, name, is_admin, created_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'local', TRUE, strftime('%Y-%m-%d %H:%M:%f', 'now'));

ALTER TABLE characters ADD COLUMN user_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE user_profiles ADD COLUMN user_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE chat_sessions ADD COLUMN user_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
CREATE INDEX characters_user_id_id ON characters (user_id, id);
CREATE INDEX user_profiles_user_id_id ON user_profiles (user_id, id);
CREATE INDEX chat_sessions_user_id_id ON chat_sessions (user_id, id);

-- One row per generation, whatever its outcome. No foreign keys: usage is
-- kept when the chat it came from is deleted.
CREATE TABLE usage_records (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    chat_session_id TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost DOUBLE,
    ttft_ms BIGINT,
    duration_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    -- The UTC day ("2026-11-25"), so grouping by day is the same query on
    -- both backends.
    day TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX usage_records_user_id_created_at ON usage_records (user_id, created_at);
