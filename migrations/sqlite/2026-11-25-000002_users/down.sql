DROP TABLE usage_records;
DROP INDEX chat_sessions_user_id_id;
DROP INDEX user_profiles_user_id_id;
DROP INDEX characters_user_id_id;
ALTER TABLE chat_sessions DROP COLUMN user_id;
ALTER TABLE user_profiles DROP COLUMN user_id;
ALTER TABLE characters DROP COLUMN user_id;
DROP TABLE users;
