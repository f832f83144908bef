-- The fencing epoch of each chat's replies, for replicas sharing the
-- database: starting a reply takes the next epoch, and its final write lands
-- only while the epoch is still its own, so a replica that lost its hold on
-- the chat (paused, partitioned) cannot overwrite what another one stored.
-- Kept here rather than in Redis so it survives a Redis restart.
CREATE TABLE reply_epochs (
    chat_session_id TEXT PRIMARY KEY NOT NULL REFERENCES chat_sessions(id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL
);
