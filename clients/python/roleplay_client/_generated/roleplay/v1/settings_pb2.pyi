import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import samplers_pb2 as _samplers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Settings(_message.Message):
    __slots__ = ("api_key_set", "api_key_hint", "pre_system_prompt", "system_prompt", "post_system_prompt", "default_model", "provider_base_url", "api_key_problem", "fallback_providers", "user_api_key_set", "user_api_key_hint", "user_api_key_problem", "default_samplers", "default_context_tokens", "default_reply_tokens")
    API_KEY_SET_FIELD_NUMBER: _ClassVar[int]
    API_KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    PRE_SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    POST_SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_BASE_URL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    USER_API_KEY_SET_FIELD_NUMBER: _ClassVar[int]
    USER_API_KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    USER_API_KEY_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_REPLY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    api_key_set: bool
    api_key_hint: str
    pre_system_prompt: str
    system_prompt: str
    post_system_prompt: str
    default_model: str
    provider_base_url: str
    api_key_problem: str
    fallback_providers: _containers.RepeatedCompositeFieldContainer[FallbackProvider]
    user_api_key_set: bool
    user_api_key_hint: str
    user_api_key_problem: str
    default_samplers: _samplers_pb2.Samplers
    default_context_tokens: int
    default_reply_tokens: int
    def __init__(self, api_key_set: _Optional[bool] = ..., api_key_hint: _Optional[str] = ..., pre_system_prompt: _Optional[str] = ..., system_prompt: _Optional[str] = ..., post_system_prompt: _Optional[str] = ..., default_model: _Optional[str] = ..., provider_base_url: _Optional[str] = ..., api_key_problem: _Optional[str] = ..., fallback_providers: _Optional[_Iterable[_Union[FallbackProvider, _Mapping]]] = ..., user_api_key_set: _Optional[bool] = ..., user_api_key_hint: _Optional[str] = ..., user_api_key_problem: _Optional[str] = ..., default_samplers: _Optional[_Union[_samplers_pb2.Samplers, _Mapping]] = ..., default_context_tokens: _Optional[int] = ..., default_reply_tokens: _Optional[int] = ...) -> None: ...

class FallbackProvider(_message.Message):
    __slots__ = ("name", "base_url", "model", "api_key_set", "api_key_hint", "api_key_problem")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_SET_FIELD_NUMBER: _ClassVar[int]
    API_KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    API_KEY_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_url: str
    model: str
    api_key_set: bool
    api_key_hint: str
    api_key_problem: str
    def __init__(self, name: _Optional[str] = ..., base_url: _Optional[str] = ..., model: _Optional[str] = ..., api_key_set: _Optional[bool] = ..., api_key_hint: _Optional[str] = ..., api_key_problem: _Optional[str] = ...) -> None: ...

class FallbackProviderInput(_message.Message):
    __slots__ = ("name", "base_url", "model", "api_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    base_url: str
    model: str
    api_key: str
    def __init__(self, name: _Optional[str] = ..., base_url: _Optional[str] = ..., model: _Optional[str] = ..., api_key: _Optional[str] = ...) -> None: ...

class SetFallbackProvidersRequest(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[FallbackProviderInput]
    def __init__(self, providers: _Optional[_Iterable[_Union[FallbackProviderInput, _Mapping]]] = ...) -> None: ...

class GetSettingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateSettingsRequest(_message.Message):
    __slots__ = ("pre_system_prompt", "system_prompt", "post_system_prompt", "default_model", "provider_base_url", "provider_api_key", "default_samplers", "default_context_tokens", "default_reply_tokens")
    PRE_SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    POST_SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_BASE_URL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_API_KEY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_REPLY_TOKENS_FIELD_NUMBER: _ClassVar[int]
    pre_system_prompt: str
    system_prompt: str
    post_system_prompt: str
    default_model: str
    provider_base_url: str
    provider_api_key: str
    default_samplers: _samplers_pb2.Samplers
    default_context_tokens: int
    default_reply_tokens: int
    def __init__(self, pre_system_prompt: _Optional[str] = ..., system_prompt: _Optional[str] = ..., post_system_prompt: _Optional[str] = ..., default_model: _Optional[str] = ..., provider_base_url: _Optional[str] = ..., provider_api_key: _Optional[str] = ..., default_samplers: _Optional[_Union[_samplers_pb2.Samplers, _Mapping]] = ..., default_context_tokens: _Optional[int] = ..., default_reply_tokens: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("id", "name", "context_length", "max_completion_tokens", "prompt_price", "completion_price", "supported_parameters")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_PRICE_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_PRICE_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    context_length: int
    max_completion_tokens: int
    prompt_price: str
    completion_price: str
    supported_parameters: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., context_length: _Optional[int] = ..., max_completion_tokens: _Optional[int] = ..., prompt_price: _Optional[str] = ..., completion_price: _Optional[str] = ..., supported_parameters: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "fetched_at", "refresh_error")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    FETCHED_AT_FIELD_NUMBER: _ClassVar[int]
    REFRESH_ERROR_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    fetched_at: _timestamp_pb2.Timestamp
    refresh_error: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., fetched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_error: _Optional[str] = ...) -> None: ...

class SetProviderApiKeyRequest(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    def __init__(self, api_key: _Optional[str] = ...) -> None: ...

class ClearProviderApiKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
