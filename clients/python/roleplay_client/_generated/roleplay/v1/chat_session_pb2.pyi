import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import samplers_pb2 as _samplers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]

class MessageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATUS_UNSPECIFIED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_COMPLETED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_STREAMING: _ClassVar[MessageStatus]
    MESSAGE_STATUS_FAILED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_CANCELLED: _ClassVar[MessageStatus]
    MESSAGE_STATUS_INTERRUPTED: _ClassVar[MessageStatus]
ROLE_UNSPECIFIED: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
ROLE_SYSTEM: Role
MESSAGE_STATUS_UNSPECIFIED: MessageStatus
MESSAGE_STATUS_COMPLETED: MessageStatus
MESSAGE_STATUS_STREAMING: MessageStatus
MESSAGE_STATUS_FAILED: MessageStatus
MESSAGE_STATUS_CANCELLED: MessageStatus
MESSAGE_STATUS_INTERRUPTED: MessageStatus

class ChatSession(_message.Message):
    __slots__ = ("id", "character_id", "user_profile_id", "title", "model", "temperature", "max_tokens", "created_at", "updated_at", "samplers", "context_tokens", "authors_note", "authors_note_depth")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AUTHORS_NOTE_FIELD_NUMBER: _ClassVar[int]
    AUTHORS_NOTE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    id: str
    character_id: str
    user_profile_id: str
    title: str
    model: str
    temperature: float
    max_tokens: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    samplers: _samplers_pb2.Samplers
    context_tokens: int
    authors_note: str
    authors_note_depth: int
    def __init__(self, id: _Optional[str] = ..., character_id: _Optional[str] = ..., user_profile_id: _Optional[str] = ..., title: _Optional[str] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., samplers: _Optional[_Union[_samplers_pb2.Samplers, _Mapping]] = ..., context_tokens: _Optional[int] = ..., authors_note: _Optional[str] = ..., authors_note_depth: _Optional[int] = ...) -> None: ...

class CreateChatSessionRequest(_message.Message):
    __slots__ = ("character_id", "user_profile_id", "title", "model", "temperature", "max_tokens", "samplers", "context_tokens", "authors_note", "authors_note_depth")
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AUTHORS_NOTE_FIELD_NUMBER: _ClassVar[int]
    AUTHORS_NOTE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    character_id: str
    user_profile_id: str
    title: str
    model: str
    temperature: float
    max_tokens: int
    samplers: _samplers_pb2.Samplers
    context_tokens: int
    authors_note: str
    authors_note_depth: int
    def __init__(self, character_id: _Optional[str] = ..., user_profile_id: _Optional[str] = ..., title: _Optional[str] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., samplers: _Optional[_Union[_samplers_pb2.Samplers, _Mapping]] = ..., context_tokens: _Optional[int] = ..., authors_note: _Optional[str] = ..., authors_note_depth: _Optional[int] = ...) -> None: ...

class UpdateChatSessionRequest(_message.Message):
    __slots__ = ("chat_session", "update_mask")
    CHAT_SESSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    chat_session: ChatSession
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, chat_session: _Optional[_Union[ChatSession, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class GetChatSessionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListChatSessionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "character_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    character_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., character_id: _Optional[str] = ...) -> None: ...

class ListChatSessionsResponse(_message.Message):
    __slots__ = ("chat_sessions", "next_page_token")
    CHAT_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    chat_sessions: _containers.RepeatedCompositeFieldContainer[ChatSession]
    next_page_token: str
    def __init__(self, chat_sessions: _Optional[_Iterable[_Union[ChatSession, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteChatSessionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteChatSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ForkChatSessionRequest(_message.Message):
    __slots__ = ("chat_session_id", "message_id", "title")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    message_id: str
    title: str
    def __init__(self, chat_session_id: _Optional[str] = ..., message_id: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("chat_session_id", "page_size", "page_token")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    page_size: int
    page_token: str
    def __init__(self, chat_session_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "chat_session_id", "role", "content", "status", "model", "prompt_tokens", "completion_tokens", "error", "created_at", "stream_id", "duration_ms", "provider", "alternative_index", "alternative_count", "edited_at", "finish_reason", "updated_at", "avatar_url")
    ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EDITED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    id: str
    chat_session_id: str
    role: Role
    content: str
    status: MessageStatus
    model: str
    prompt_tokens: int
    completion_tokens: int
    error: str
    created_at: _timestamp_pb2.Timestamp
    stream_id: str
    duration_ms: int
    provider: str
    alternative_index: int
    alternative_count: int
    edited_at: _timestamp_pb2.Timestamp
    finish_reason: str
    updated_at: _timestamp_pb2.Timestamp
    avatar_url: str
    def __init__(self, id: _Optional[str] = ..., chat_session_id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ..., status: _Optional[_Union[MessageStatus, str]] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stream_id: _Optional[str] = ..., duration_ms: _Optional[int] = ..., provider: _Optional[str] = ..., alternative_index: _Optional[int] = ..., alternative_count: _Optional[int] = ..., edited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_reason: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., avatar_url: _Optional[str] = ...) -> None: ...
