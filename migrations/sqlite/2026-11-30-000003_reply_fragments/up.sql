-- The text of running replies, checkpointed as the pieces appended since
-- the last checkpoint rather than the whole text each time. A reply's
-- pieces are merged into its message when it ends, or at the next start
-- after a crash.
CREATE TABLE reply_fragments (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    byte_offset BIGINT NOT NULL,
    piece TEXT NOT NULL,
    PRIMARY KEY (message_id, byte_offset)
);
