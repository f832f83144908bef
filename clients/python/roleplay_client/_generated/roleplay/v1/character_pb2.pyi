import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import samplers_pb2 as _samplers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CardFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_FORMAT_UNSPECIFIED: _ClassVar[CardFormat]
    CARD_FORMAT_V1_JSON: _ClassVar[CardFormat]
    CARD_FORMAT_V2_JSON: _ClassVar[CardFormat]
    CARD_FORMAT_V3_JSON: _ClassVar[CardFormat]
    CARD_FORMAT_PNG_V2: _ClassVar[CardFormat]
    CARD_FORMAT_PNG_V3: _ClassVar[CardFormat]
    CARD_FORMAT_CHARX: _ClassVar[CardFormat]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSON: _ClassVar[ExportFormat]
    EXPORT_FORMAT_PNG: _ClassVar[ExportFormat]
CARD_FORMAT_UNSPECIFIED: CardFormat
CARD_FORMAT_V1_JSON: CardFormat
CARD_FORMAT_V2_JSON: CardFormat
CARD_FORMAT_V3_JSON: CardFormat
CARD_FORMAT_PNG_V2: CardFormat
CARD_FORMAT_PNG_V3: CardFormat
CARD_FORMAT_CHARX: CardFormat
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_JSON: ExportFormat
EXPORT_FORMAT_PNG: ExportFormat

class Character(_message.Message):
    __slots__ = ("id", "name", "description", "system_prompt", "post_history_instructions", "first_message", "created_at", "updated_at", "personality", "scenario", "mes_example", "alternate_greetings", "tags", "creator", "creator_notes", "character_version", "extensions_json", "avatar_url", "lorebook_id", "samplers")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    POST_HISTORY_INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PERSONALITY_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    MES_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    ALTERNATE_GREETINGS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    CREATOR_NOTES_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    LOREBOOK_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    system_prompt: str
    post_history_instructions: str
    first_message: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    personality: str
    scenario: str
    mes_example: str
    alternate_greetings: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    creator: str
    creator_notes: str
    character_version: str
    extensions_json: str
    avatar_url: str
    lorebook_id: str
    samplers: _samplers_pb2.Samplers
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., system_prompt: _Optional[str] = ..., post_history_instructions: _Optional[str] = ..., first_message: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., personality: _Optional[str] = ..., scenario: _Optional[str] = ..., mes_example: _Optional[str] = ..., alternate_greetings: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., creator: _Optional[str] = ..., creator_notes: _Optional[str] = ..., character_version: _Optional[str] = ..., extensions_json: _Optional[str] = ..., avatar_url: _Optional[str] = ..., lorebook_id: _Optional[str] = ..., samplers: _Optional[_Union[_samplers_pb2.Samplers, _Mapping]] = ...) -> None: ...

class CreateCharacterRequest(_message.Message):
    __slots__ = ("name", "description", "system_prompt", "post_history_instructions", "first_message", "personality", "scenario", "mes_example", "alternate_greetings", "tags", "creator", "creator_notes", "character_version", "extensions_json", "samplers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    POST_HISTORY_INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PERSONALITY_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    MES_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    ALTERNATE_GREETINGS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    CREATOR_NOTES_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    system_prompt: str
    post_history_instructions: str
    first_message: str
    personality: str
    scenario: str
    mes_example: str
    alternate_greetings: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    creator: str
    creator_notes: str
    character_version: str
    extensions_json: str
    samplers: _samplers_pb2.Samplers
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., system_prompt: _Optional[str] = ..., post_history_instructions: _Optional[str] = ..., first_message: _Optional[str] = ..., personality: _Optional[str] = ..., scenario: _Optional[str] = ..., mes_example: _Optional[str] = ..., alternate_greetings: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., creator: _Optional[str] = ..., creator_notes: _Optional[str] = ..., character_version: _Optional[str] = ..., extensions_json: _Optional[str] = ..., samplers: _Optional[_Union[_samplers_pb2.Samplers, _Mapping]] = ...) -> None: ...

class GetCharacterRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListCharactersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "tag", "name_contains")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    tag: str
    name_contains: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tag: _Optional[str] = ..., name_contains: _Optional[str] = ...) -> None: ...

class ListCharactersResponse(_message.Message):
    __slots__ = ("characters", "next_page_token")
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    characters: _containers.RepeatedCompositeFieldContainer[Character]
    next_page_token: str
    def __init__(self, characters: _Optional[_Iterable[_Union[Character, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCharacterRequest(_message.Message):
    __slots__ = ("id", "name", "description", "system_prompt", "post_history_instructions", "first_message", "personality", "scenario", "mes_example", "alternate_greetings", "set_alternate_greetings", "tags", "set_tags", "creator", "creator_notes", "character_version", "extensions_json", "samplers")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    POST_HISTORY_INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PERSONALITY_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    MES_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    ALTERNATE_GREETINGS_FIELD_NUMBER: _ClassVar[int]
    SET_ALTERNATE_GREETINGS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SET_TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    CREATOR_NOTES_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    system_prompt: str
    post_history_instructions: str
    first_message: str
    personality: str
    scenario: str
    mes_example: str
    alternate_greetings: _containers.RepeatedScalarFieldContainer[str]
    set_alternate_greetings: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    set_tags: bool
    creator: str
    creator_notes: str
    character_version: str
    extensions_json: str
    samplers: _samplers_pb2.Samplers
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., system_prompt: _Optional[str] = ..., post_history_instructions: _Optional[str] = ..., first_message: _Optional[str] = ..., personality: _Optional[str] = ..., scenario: _Optional[str] = ..., mes_example: _Optional[str] = ..., alternate_greetings: _Optional[_Iterable[str]] = ..., set_alternate_greetings: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., set_tags: _Optional[bool] = ..., creator: _Optional[str] = ..., creator_notes: _Optional[str] = ..., character_version: _Optional[str] = ..., extensions_json: _Optional[str] = ..., samplers: _Optional[_Union[_samplers_pb2.Samplers, _Mapping]] = ...) -> None: ...

class DeleteCharacterRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteCharacterResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ImportCharacterRequest(_message.Message):
    __slots__ = ("data", "filename")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    filename: str
    def __init__(self, data: _Optional[bytes] = ..., filename: _Optional[str] = ...) -> None: ...

class ImportCharacterResponse(_message.Message):
    __slots__ = ("character", "format")
    CHARACTER_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    character: Character
    format: CardFormat
    def __init__(self, character: _Optional[_Union[Character, _Mapping]] = ..., format: _Optional[_Union[CardFormat, str]] = ...) -> None: ...

class ExportCharacterRequest(_message.Message):
    __slots__ = ("id", "format")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    id: str
    format: ExportFormat
    def __init__(self, id: _Optional[str] = ..., format: _Optional[_Union[ExportFormat, str]] = ...) -> None: ...

class ExportCharacterResponse(_message.Message):
    __slots__ = ("data", "content_type", "filename")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    filename: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class SetCharacterAvatarRequest(_message.Message):
    __slots__ = ("id", "data")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    data: bytes
    def __init__(self, id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
