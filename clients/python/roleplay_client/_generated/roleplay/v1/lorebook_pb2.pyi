import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SelectiveLogic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SELECTIVE_LOGIC_AND_ANY: _ClassVar[SelectiveLogic]
    SELECTIVE_LOGIC_NOT_ALL: _ClassVar[SelectiveLogic]
    SELECTIVE_LOGIC_NOT_ANY: _ClassVar[SelectiveLogic]
    SELECTIVE_LOGIC_AND_ALL: _ClassVar[SelectiveLogic]

class EntryPosition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_POSITION_BEFORE_CHARACTER: _ClassVar[EntryPosition]
    ENTRY_POSITION_AFTER_CHARACTER: _ClassVar[EntryPosition]
    ENTRY_POSITION_AUTHORS_NOTE_TOP: _ClassVar[EntryPosition]
    ENTRY_POSITION_AUTHORS_NOTE_BOTTOM: _ClassVar[EntryPosition]
    ENTRY_POSITION_AT_DEPTH: _ClassVar[EntryPosition]
    ENTRY_POSITION_EXAMPLES_TOP: _ClassVar[EntryPosition]
    ENTRY_POSITION_EXAMPLES_BOTTOM: _ClassVar[EntryPosition]

class EntryRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_ROLE_SYSTEM: _ClassVar[EntryRole]
    ENTRY_ROLE_USER: _ClassVar[EntryRole]
    ENTRY_ROLE_ASSISTANT: _ClassVar[EntryRole]
SELECTIVE_LOGIC_AND_ANY: SelectiveLogic
SELECTIVE_LOGIC_NOT_ALL: SelectiveLogic
SELECTIVE_LOGIC_NOT_ANY: SelectiveLogic
SELECTIVE_LOGIC_AND_ALL: SelectiveLogic
ENTRY_POSITION_BEFORE_CHARACTER: EntryPosition
ENTRY_POSITION_AFTER_CHARACTER: EntryPosition
ENTRY_POSITION_AUTHORS_NOTE_TOP: EntryPosition
ENTRY_POSITION_AUTHORS_NOTE_BOTTOM: EntryPosition
ENTRY_POSITION_AT_DEPTH: EntryPosition
ENTRY_POSITION_EXAMPLES_TOP: EntryPosition
ENTRY_POSITION_EXAMPLES_BOTTOM: EntryPosition
ENTRY_ROLE_SYSTEM: EntryRole
ENTRY_ROLE_USER: EntryRole
ENTRY_ROLE_ASSISTANT: EntryRole

class LorebookEntry(_message.Message):
    __slots__ = ("id", "keys", "secondary_keys", "selective_logic", "content", "comment", "constant", "enabled", "case_sensitive", "match_whole_words", "insertion_order", "position", "depth", "depth_role", "probability")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    SECONDARY_KEYS_FIELD_NUMBER: _ClassVar[int]
    SELECTIVE_LOGIC_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    CONSTANT_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CASE_SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    MATCH_WHOLE_WORDS_FIELD_NUMBER: _ClassVar[int]
    INSERTION_ORDER_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    DEPTH_ROLE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    id: int
    keys: _containers.RepeatedScalarFieldContainer[str]
    secondary_keys: _containers.RepeatedScalarFieldContainer[str]
    selective_logic: SelectiveLogic
    content: str
    comment: str
    constant: bool
    enabled: bool
    case_sensitive: bool
    match_whole_words: bool
    insertion_order: int
    position: EntryPosition
    depth: int
    depth_role: EntryRole
    probability: int
    def __init__(self, id: _Optional[int] = ..., keys: _Optional[_Iterable[str]] = ..., secondary_keys: _Optional[_Iterable[str]] = ..., selective_logic: _Optional[_Union[SelectiveLogic, str]] = ..., content: _Optional[str] = ..., comment: _Optional[str] = ..., constant: _Optional[bool] = ..., enabled: _Optional[bool] = ..., case_sensitive: _Optional[bool] = ..., match_whole_words: _Optional[bool] = ..., insertion_order: _Optional[int] = ..., position: _Optional[_Union[EntryPosition, str]] = ..., depth: _Optional[int] = ..., depth_role: _Optional[_Union[EntryRole, str]] = ..., probability: _Optional[int] = ...) -> None: ...

class Lorebook(_message.Message):
    __slots__ = ("id", "name", "description", "scan_depth", "token_budget", "recursive_scanning", "entries", "character_ids", "chat_session_ids", "created_at", "updated_at", "entry_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCAN_DEPTH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_SCANNING_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_IDS_FIELD_NUMBER: _ClassVar[int]
    CHAT_SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    scan_depth: int
    token_budget: int
    recursive_scanning: bool
    entries: _containers.RepeatedCompositeFieldContainer[LorebookEntry]
    character_ids: _containers.RepeatedScalarFieldContainer[str]
    chat_session_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    entry_count: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., scan_depth: _Optional[int] = ..., token_budget: _Optional[int] = ..., recursive_scanning: _Optional[bool] = ..., entries: _Optional[_Iterable[_Union[LorebookEntry, _Mapping]]] = ..., character_ids: _Optional[_Iterable[str]] = ..., chat_session_ids: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., entry_count: _Optional[int] = ...) -> None: ...

class CreateLorebookRequest(_message.Message):
    __slots__ = ("name", "description", "scan_depth", "token_budget", "recursive_scanning")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCAN_DEPTH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_SCANNING_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    scan_depth: int
    token_budget: int
    recursive_scanning: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., scan_depth: _Optional[int] = ..., token_budget: _Optional[int] = ..., recursive_scanning: _Optional[bool] = ...) -> None: ...

class GetLorebookRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListLorebooksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLorebooksResponse(_message.Message):
    __slots__ = ("lorebooks", "next_page_token")
    LOREBOOKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    lorebooks: _containers.RepeatedCompositeFieldContainer[Lorebook]
    next_page_token: str
    def __init__(self, lorebooks: _Optional[_Iterable[_Union[Lorebook, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateLorebookRequest(_message.Message):
    __slots__ = ("id", "name", "description", "scan_depth", "token_budget", "recursive_scanning")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCAN_DEPTH_FIELD_NUMBER: _ClassVar[int]
    TOKEN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_SCANNING_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    scan_depth: int
    token_budget: int
    recursive_scanning: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., scan_depth: _Optional[int] = ..., token_budget: _Optional[int] = ..., recursive_scanning: _Optional[bool] = ...) -> None: ...

class DeleteLorebookRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteLorebookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateLorebookEntryRequest(_message.Message):
    __slots__ = ("lorebook_id", "entry")
    LOREBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    lorebook_id: str
    entry: LorebookEntry
    def __init__(self, lorebook_id: _Optional[str] = ..., entry: _Optional[_Union[LorebookEntry, _Mapping]] = ...) -> None: ...

class UpdateLorebookEntryRequest(_message.Message):
    __slots__ = ("lorebook_id", "entry_id", "entry")
    LOREBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    lorebook_id: str
    entry_id: int
    entry: LorebookEntry
    def __init__(self, lorebook_id: _Optional[str] = ..., entry_id: _Optional[int] = ..., entry: _Optional[_Union[LorebookEntry, _Mapping]] = ...) -> None: ...

class DeleteLorebookEntryRequest(_message.Message):
    __slots__ = ("lorebook_id", "entry_id")
    LOREBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    lorebook_id: str
    entry_id: int
    def __init__(self, lorebook_id: _Optional[str] = ..., entry_id: _Optional[int] = ...) -> None: ...

class DeleteLorebookEntryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ImportLorebookRequest(_message.Message):
    __slots__ = ("data", "filename")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    filename: str
    def __init__(self, data: _Optional[bytes] = ..., filename: _Optional[str] = ...) -> None: ...

class ExportLorebookRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ExportLorebookResponse(_message.Message):
    __slots__ = ("data", "filename")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    filename: str
    def __init__(self, data: _Optional[bytes] = ..., filename: _Optional[str] = ...) -> None: ...

class AttachLorebookRequest(_message.Message):
    __slots__ = ("lorebook_id", "character_id", "chat_session_id")
    LOREBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    lorebook_id: str
    character_id: str
    chat_session_id: str
    def __init__(self, lorebook_id: _Optional[str] = ..., character_id: _Optional[str] = ..., chat_session_id: _Optional[str] = ...) -> None: ...

class DetachLorebookRequest(_message.Message):
    __slots__ = ("lorebook_id", "character_id", "chat_session_id")
    LOREBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    lorebook_id: str
    character_id: str
    chat_session_id: str
    def __init__(self, lorebook_id: _Optional[str] = ..., character_id: _Optional[str] = ..., chat_session_id: _Optional[str] = ...) -> None: ...
