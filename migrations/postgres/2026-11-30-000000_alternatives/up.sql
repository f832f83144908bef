-- Swipes. A message row is a turn showing its selected alternative, so every
-- reader of the history (prompts, ListMessages, backlogs) is unchanged; the
-- turn's other alternatives wait in message_alternatives and trade places
-- with the row when selected. Existing messages are turns of one.
ALTER TABLE messages ADD COLUMN alternative_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN alternative_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN edited_at TIMESTAMP;

CREATE TABLE message_alternatives (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    alternative_index INTEGER NOT NULL,
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    error TEXT,
    stream_id TEXT,
    finish_reason TEXT,
    duration_ms BIGINT,
    edited_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (message_id, alternative_index)
);
CREATE INDEX message_alternatives_stream_id ON message_alternatives (stream_id);
