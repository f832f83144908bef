DROP TABLE settings;
DROP TABLE messages;
DROP TABLE chat_sessions;
DROP TABLE user_profiles;
DROP TABLE characters;
