//! Diesel table definitions shared by both backends: the migrations under
//! migrations/sqlite and migrations/postgres create the same columns.

diesel::table! {
    characters (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        system_prompt -> Nullable<Text>,
        post_history_instructions -> Nullable<Text>,
        first_message -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        user_id -> Text,
        personality -> Text,
        scenario -> Text,
        mes_example -> Text,
        alternate_greetings -> Text,
        tags -> Text,
        creator -> Text,
        creator_notes -> Text,
        character_version -> Text,
        extensions -> Text,
        card_extra -> Text,
        avatar_hash -> Nullable<Text>,
        lorebook_id -> Nullable<Text>,
        samplers -> Text,
    }
}

diesel::table! {
    avatars (hash) {
        hash -> Text,
        content_type -> Text,
        data -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    lorebooks (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        book -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    character_lorebooks (character_id, lorebook_id) {
        character_id -> Text,
        lorebook_id -> Text,
    }
}

diesel::table! {
    chat_lorebooks (chat_session_id, lorebook_id) {
        chat_session_id -> Text,
        lorebook_id -> Text,
    }
}

diesel::table! {
    user_profiles (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        user_id -> Text,
    }
}

diesel::table! {
    chat_sessions (id) {
        id -> Text,
        character_id -> Text,
        user_profile_id -> Text,
        title -> Text,
        model -> Nullable<Text>,
        temperature -> Nullable<Double>,
        max_tokens -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        user_id -> Text,
        samplers -> Text,
        context_tokens -> Nullable<Integer>,
        authors_note -> Text,
        authors_note_depth -> Integer,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        chat_session_id -> Text,
        role -> Text,
        content -> Text,
        status -> Text,
        model -> Nullable<Text>,
        prompt_tokens -> Nullable<Integer>,
        completion_tokens -> Nullable<Integer>,
        error -> Nullable<Text>,
        stream_id -> Nullable<Text>,
        finish_reason -> Nullable<Text>,
        duration_ms -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        provider -> Nullable<Text>,
        alternative_index -> Integer,
        alternative_count -> Integer,
        edited_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    message_alternatives (message_id, alternative_index) {
        message_id -> Text,
        alternative_index -> Integer,
        content -> Text,
        status -> Text,
        model -> Nullable<Text>,
        provider -> Nullable<Text>,
        prompt_tokens -> Nullable<Integer>,
        completion_tokens -> Nullable<Integer>,
        error -> Nullable<Text>,
        stream_id -> Nullable<Text>,
        finish_reason -> Nullable<Text>,
        duration_ms -> Nullable<BigInt>,
        edited_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        name -> Text,
        is_admin -> Bool,
        token_lookup -> Nullable<Text>,
        token_hash -> Nullable<Text>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    usage_records (id) {
        id -> Text,
        user_id -> Text,
        chat_session_id -> Text,
        stream_id -> Text,
        model -> Text,
        provider -> Nullable<Text>,
        prompt_tokens -> Integer,
        completion_tokens -> Integer,
        cost -> Nullable<Double>,
        ttft_ms -> Nullable<BigInt>,
        duration_ms -> BigInt,
        outcome -> Text,
        detail -> Text,
        day -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reply_fragments (message_id, byte_offset) {
        message_id -> Text,
        byte_offset -> BigInt,
        piece -> Text,
    }
}

diesel::joinable!(chat_sessions -> characters (character_id));
diesel::joinable!(chat_sessions -> user_profiles (user_profile_id));
diesel::table! {
    reply_epochs (chat_session_id) {
        chat_session_id -> Text,
        epoch -> BigInt,
    }
}

diesel::joinable!(messages -> chat_sessions (chat_session_id));
diesel::joinable!(reply_epochs -> chat_sessions (chat_session_id));
diesel::joinable!(message_alternatives -> messages (message_id));
diesel::joinable!(reply_fragments -> messages (message_id));
diesel::joinable!(character_lorebooks -> characters (character_id));
diesel::joinable!(character_lorebooks -> lorebooks (lorebook_id));
diesel::joinable!(chat_lorebooks -> chat_sessions (chat_session_id));
diesel::joinable!(chat_lorebooks -> lorebooks (lorebook_id));
diesel::allow_tables_to_appear_in_same_query!(
    characters,
    user_profiles,
    chat_sessions,
    messages,
    message_alternatives,
    reply_fragments,
    reply_epochs,
    avatars,
    lorebooks,
    character_lorebooks,
    chat_lorebooks,
    settings,
    users,
    usage_records
);
