-- Characters as cards carry them. List-valued and free-form fields are JSON
-- text: alternate_greetings and tags (arrays of strings), extensions (the
-- card's object, kept verbatim) and card_extra (any other card field this
-- server does not model, written back on export).
ALTER TABLE characters ADD COLUMN personality TEXT NOT NULL DEFAULT '';
ALTER TABLE characters ADD COLUMN scenario TEXT NOT NULL DEFAULT '';
ALTER TABLE characters ADD COLUMN mes_example TEXT NOT NULL DEFAULT '';
ALTER TABLE characters ADD COLUMN alternate_greetings TEXT NOT NULL DEFAULT '[]';
ALTER TABLE characters ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE characters ADD COLUMN creator TEXT NOT NULL DEFAULT '';
ALTER TABLE characters ADD COLUMN creator_notes TEXT NOT NULL DEFAULT '';
ALTER TABLE characters ADD COLUMN character_version TEXT NOT NULL DEFAULT '';
ALTER TABLE characters ADD COLUMN extensions TEXT NOT NULL DEFAULT '{}';
ALTER TABLE characters ADD COLUMN card_extra TEXT NOT NULL DEFAULT '{}';
-- The avatar (see avatars) and the card's own lorebook (its character_book).
ALTER TABLE characters ADD COLUMN avatar_hash TEXT;
ALTER TABLE characters ADD COLUMN lorebook_id TEXT;

-- Avatar images, stored once per content (SHA-256, hex).
CREATE TABLE avatars (
    hash TEXT PRIMARY KEY NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- World info. The book (settings and entries) is one JSON document in the
-- shape of src/lorebook/types.rs: read and written whole, and lossless for
-- fields this server does not model.
CREATE TABLE lorebooks (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    book TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX lorebooks_user_id_id ON lorebooks (user_id, id);

-- Books attached to characters and to chats.
CREATE TABLE character_lorebooks (
    character_id TEXT NOT NULL REFERENCES characters (id) ON DELETE CASCADE,
    lorebook_id TEXT NOT NULL REFERENCES lorebooks (id) ON DELETE CASCADE,
    PRIMARY KEY (character_id, lorebook_id)
);
CREATE INDEX character_lorebooks_lorebook_id ON character_lorebooks (lorebook_id);
CREATE TABLE chat_lorebooks (
    chat_session_id TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    lorebook_id TEXT NOT NULL REFERENCES lorebooks (id) ON DELETE CASCADE,
    PRIMARY KEY (chat_session_id, lorebook_id)
);
CREATE INDEX chat_lorebooks_lorebook_id ON chat_lorebooks (lorebook_id);
