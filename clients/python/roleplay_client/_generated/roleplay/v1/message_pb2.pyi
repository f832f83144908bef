import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import chat_session_pb2 as _chat_session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PromptSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMPT_SOURCE_UNSPECIFIED: _ClassVar[PromptSource]
    PROMPT_SOURCE_SYSTEM: _ClassVar[PromptSource]
    PROMPT_SOURCE_EXAMPLE: _ClassVar[PromptSource]
    PROMPT_SOURCE_HISTORY: _ClassVar[PromptSource]
    PROMPT_SOURCE_LORE: _ClassVar[PromptSource]
    PROMPT_SOURCE_AUTHORS_NOTE: _ClassVar[PromptSource]
    PROMPT_SOURCE_POST_HISTORY: _ClassVar[PromptSource]
    PROMPT_SOURCE_NEW_MESSAGE: _ClassVar[PromptSource]
    PROMPT_SOURCE_CONTINUED_REPLY: _ClassVar[PromptSource]

class ReplyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLY_KIND_UNSPECIFIED: _ClassVar[ReplyKind]
    REPLY_KIND_SEND: _ClassVar[ReplyKind]
    REPLY_KIND_REGENERATE: _ClassVar[ReplyKind]
    REPLY_KIND_CONTINUE: _ClassVar[ReplyKind]

class ChatChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_CHANGE_KIND_UNSPECIFIED: _ClassVar[ChatChangeKind]
    CHAT_CHANGE_KIND_EDITED: _ClassVar[ChatChangeKind]
    CHAT_CHANGE_KIND_DELETED: _ClassVar[ChatChangeKind]
    CHAT_CHANGE_KIND_SELECTED: _ClassVar[ChatChangeKind]
    CHAT_CHANGE_KIND_REWOUND: _ClassVar[ChatChangeKind]

class FailureCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_CODE_UNSPECIFIED: _ClassVar[FailureCode]
    FAILURE_CODE_UPSTREAM_ERROR: _ClassVar[FailureCode]
    FAILURE_CODE_UPSTREAM_TIMEOUT: _ClassVar[FailureCode]
    FAILURE_CODE_UPSTREAM_UNAVAILABLE: _ClassVar[FailureCode]
    FAILURE_CODE_KEY_REJECTED: _ClassVar[FailureCode]
    FAILURE_CODE_OUT_OF_CREDITS: _ClassVar[FailureCode]
    FAILURE_CODE_STORAGE: _ClassVar[FailureCode]
    FAILURE_CODE_INTERRUPTED: _ClassVar[FailureCode]

class CancelReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANCEL_REASON_UNSPECIFIED: _ClassVar[CancelReason]
    CANCEL_REASON_REQUESTED: _ClassVar[CancelReason]
    CANCEL_REASON_IDLE_TIMEOUT: _ClassVar[CancelReason]
    CANCEL_REASON_SHUTDOWN: _ClassVar[CancelReason]
PROMPT_SOURCE_UNSPECIFIED: PromptSource
PROMPT_SOURCE_SYSTEM: PromptSource
PROMPT_SOURCE_EXAMPLE: PromptSource
PROMPT_SOURCE_HISTORY: PromptSource
PROMPT_SOURCE_LORE: PromptSource
PROMPT_SOURCE_AUTHORS_NOTE: PromptSource
PROMPT_SOURCE_POST_HISTORY: PromptSource
PROMPT_SOURCE_NEW_MESSAGE: PromptSource
PROMPT_SOURCE_CONTINUED_REPLY: PromptSource
REPLY_KIND_UNSPECIFIED: ReplyKind
REPLY_KIND_SEND: ReplyKind
REPLY_KIND_REGENERATE: ReplyKind
REPLY_KIND_CONTINUE: ReplyKind
CHAT_CHANGE_KIND_UNSPECIFIED: ChatChangeKind
CHAT_CHANGE_KIND_EDITED: ChatChangeKind
CHAT_CHANGE_KIND_DELETED: ChatChangeKind
CHAT_CHANGE_KIND_SELECTED: ChatChangeKind
CHAT_CHANGE_KIND_REWOUND: ChatChangeKind
FAILURE_CODE_UNSPECIFIED: FailureCode
FAILURE_CODE_UPSTREAM_ERROR: FailureCode
FAILURE_CODE_UPSTREAM_TIMEOUT: FailureCode
FAILURE_CODE_UPSTREAM_UNAVAILABLE: FailureCode
FAILURE_CODE_KEY_REJECTED: FailureCode
FAILURE_CODE_OUT_OF_CREDITS: FailureCode
FAILURE_CODE_STORAGE: FailureCode
FAILURE_CODE_INTERRUPTED: FailureCode
CANCEL_REASON_UNSPECIFIED: CancelReason
CANCEL_REASON_REQUESTED: CancelReason
CANCEL_REASON_IDLE_TIMEOUT: CancelReason
CANCEL_REASON_SHUTDOWN: CancelReason

class PreviewPromptRequest(_message.Message):
    __slots__ = ("chat_session_id", "content")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    content: str
    def __init__(self, chat_session_id: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class PromptMessage(_message.Message):
    __slots__ = ("role", "content", "source", "message_id", "tokens")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    source: PromptSource
    message_id: str
    tokens: int
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., source: _Optional[_Union[PromptSource, str]] = ..., message_id: _Optional[str] = ..., tokens: _Optional[int] = ...) -> None: ...

class PromptPreview(_message.Message):
    __slots__ = ("messages", "prompt_tokens", "context_tokens", "reply_tokens", "history_included", "history_omitted", "omitted_message_ids", "model", "tokenizer", "warning", "activated_entries")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REPLY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_INCLUDED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_OMITTED_FIELD_NUMBER: _ClassVar[int]
    OMITTED_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[PromptMessage]
    prompt_tokens: int
    context_tokens: int
    reply_tokens: int
    history_included: int
    history_omitted: int
    omitted_message_ids: _containers.RepeatedScalarFieldContainer[str]
    model: str
    tokenizer: str
    warning: str
    activated_entries: _containers.RepeatedCompositeFieldContainer[ActivatedEntry]
    def __init__(self, messages: _Optional[_Iterable[_Union[PromptMessage, _Mapping]]] = ..., prompt_tokens: _Optional[int] = ..., context_tokens: _Optional[int] = ..., reply_tokens: _Optional[int] = ..., history_included: _Optional[int] = ..., history_omitted: _Optional[int] = ..., omitted_message_ids: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., tokenizer: _Optional[str] = ..., warning: _Optional[str] = ..., activated_entries: _Optional[_Iterable[_Union[ActivatedEntry, _Mapping]]] = ...) -> None: ...

class ActivatedEntry(_message.Message):
    __slots__ = ("lorebook", "entry", "reason", "content")
    LOREBOOK_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    lorebook: str
    entry: str
    reason: str
    content: str
    def __init__(self, lorebook: _Optional[str] = ..., entry: _Optional[str] = ..., reason: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class RegenerateReplyRequest(_message.Message):
    __slots__ = ("chat_session_id",)
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    def __init__(self, chat_session_id: _Optional[str] = ...) -> None: ...

class ContinueReplyRequest(_message.Message):
    __slots__ = ("chat_session_id",)
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    def __init__(self, chat_session_id: _Optional[str] = ...) -> None: ...

class SelectAlternativeRequest(_message.Message):
    __slots__ = ("message_id", "index")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    index: int
    def __init__(self, message_id: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class EditMessageRequest(_message.Message):
    __slots__ = ("message_id", "content")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    content: str
    def __init__(self, message_id: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class DeleteMessageRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class DeleteMessageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RewindChatSessionRequest(_message.Message):
    __slots__ = ("chat_session_id", "message_id")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    message_id: str
    def __init__(self, chat_session_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class RewindChatSessionResponse(_message.Message):
    __slots__ = ("deleted_message_ids",)
    DELETED_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_message_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_message_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListAlternativesRequest(_message.Message):
    __slots__ = ("message_id",)
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    def __init__(self, message_id: _Optional[str] = ...) -> None: ...

class ListAlternativesResponse(_message.Message):
    __slots__ = ("alternatives", "selected_index")
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    SELECTED_INDEX_FIELD_NUMBER: _ClassVar[int]
    alternatives: _containers.RepeatedCompositeFieldContainer[_chat_session_pb2.Message]
    selected_index: int
    def __init__(self, alternatives: _Optional[_Iterable[_Union[_chat_session_pb2.Message, _Mapping]]] = ..., selected_index: _Optional[int] = ...) -> None: ...

class AddUserMessageRequest(_message.Message):
    __slots__ = ("chat_session_id", "content")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    content: str
    def __init__(self, chat_session_id: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class ResumePosition(_message.Message):
    __slots__ = ("stream_id", "offset")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    offset: int
    def __init__(self, stream_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class SubscribeChatSessionRequest(_message.Message):
    __slots__ = ("chat_session_id", "resume")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    resume: ResumePosition
    def __init__(self, chat_session_id: _Optional[str] = ..., resume: _Optional[_Union[ResumePosition, _Mapping]] = ...) -> None: ...

class CancelGenerationRequest(_message.Message):
    __slots__ = ("chat_session_id", "stream_id")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    stream_id: str
    def __init__(self, chat_session_id: _Optional[str] = ..., stream_id: _Optional[str] = ...) -> None: ...

class CancelGenerationResponse(_message.Message):
    __slots__ = ("cancelled", "stream_id", "message")
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    cancelled: bool
    stream_id: str
    message: str
    def __init__(self, cancelled: _Optional[bool] = ..., stream_id: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetStreamStatusRequest(_message.Message):
    __slots__ = ("chat_session_id",)
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    def __init__(self, chat_session_id: _Optional[str] = ...) -> None: ...

class StreamStatus(_message.Message):
    __slots__ = ("streaming", "stream_id", "text_length", "watchers", "started_at")
    STREAMING_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    WATCHERS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    streaming: bool
    stream_id: str
    text_length: int
    watchers: int
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, streaming: _Optional[bool] = ..., stream_id: _Optional[str] = ..., text_length: _Optional[int] = ..., watchers: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GenerationEvent(_message.Message):
    __slots__ = ("started", "delta", "heartbeat", "completed", "failed", "cancelled", "chat_changed")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    CHAT_CHANGED_FIELD_NUMBER: _ClassVar[int]
    started: Started
    delta: Delta
    heartbeat: Heartbeat
    completed: Completed
    failed: Failed
    cancelled: Cancelled
    chat_changed: ChatChanged
    def __init__(self, started: _Optional[_Union[Started, _Mapping]] = ..., delta: _Optional[_Union[Delta, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., completed: _Optional[_Union[Completed, _Mapping]] = ..., failed: _Optional[_Union[Failed, _Mapping]] = ..., cancelled: _Optional[_Union[Cancelled, _Mapping]] = ..., chat_changed: _Optional[_Union[ChatChanged, _Mapping]] = ...) -> None: ...

class ChatChanged(_message.Message):
    __slots__ = ("chat_session_id", "kind", "message_ids")
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    chat_session_id: str
    kind: ChatChangeKind
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, chat_session_id: _Optional[str] = ..., kind: _Optional[_Union[ChatChangeKind, str]] = ..., message_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Started(_message.Message):
    __slots__ = ("stream_id", "chat_session_id", "user_message_id", "assistant_message_id", "model", "started_at", "kind", "alternative_index", "alternative_count", "continues_from", "prompt_tokens", "history_included", "history_omitted")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONTINUES_FROM_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_INCLUDED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_OMITTED_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    chat_session_id: str
    user_message_id: str
    assistant_message_id: str
    model: str
    started_at: _timestamp_pb2.Timestamp
    kind: ReplyKind
    alternative_index: int
    alternative_count: int
    continues_from: int
    prompt_tokens: int
    history_included: int
    history_omitted: int
    def __init__(self, stream_id: _Optional[str] = ..., chat_session_id: _Optional[str] = ..., user_message_id: _Optional[str] = ..., assistant_message_id: _Optional[str] = ..., model: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[ReplyKind, str]] = ..., alternative_index: _Optional[int] = ..., alternative_count: _Optional[int] = ..., continues_from: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., history_included: _Optional[int] = ..., history_omitted: _Optional[int] = ...) -> None: ...

class Delta(_message.Message):
    __slots__ = ("stream_id", "offset", "text")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    offset: int
    text: str
    def __init__(self, stream_id: _Optional[str] = ..., offset: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens", "cost")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cost: _Optional[float] = ...) -> None: ...

class Completed(_message.Message):
    __slots__ = ("stream_id", "message", "finish_reason", "usage")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    message: _chat_session_pb2.Message
    finish_reason: str
    usage: Usage
    def __init__(self, stream_id: _Optional[str] = ..., message: _Optional[_Union[_chat_session_pb2.Message, _Mapping]] = ..., finish_reason: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class Failed(_message.Message):
    __slots__ = ("stream_id", "code", "message", "partial_length")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_LENGTH_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    code: FailureCode
    message: str
    partial_length: int
    def __init__(self, stream_id: _Optional[str] = ..., code: _Optional[_Union[FailureCode, str]] = ..., message: _Optional[str] = ..., partial_length: _Optional[int] = ...) -> None: ...

class Cancelled(_message.Message):
    __slots__ = ("stream_id", "partial_length", "reason")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_LENGTH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    partial_length: int
    reason: CancelReason
    def __init__(self, stream_id: _Optional[str] = ..., partial_length: _Optional[int] = ..., reason: _Optional[_Union[CancelReason, str]] = ...) -> None: ...
