"""Python client for roleplay-server.

The generated messages and stubs of ``proto/roleplay/v1`` are re-exported here
by module::

    from roleplay_client import message_pb2, message_pb2_grpc

and the hand-written helpers that follow a reply across dropped connections
are in :mod:`roleplay_client.helpers`::

    from roleplay_client import connect, continue_reply, regenerate, send_message, watch_chat

``connect(target, token=...)`` (default: ``$ROLEPLAY_TOKEN``) sends
``authorization: Bearer <token>`` with every call; ``send_message``,
``regenerate``, ``continue_reply`` and ``watch_chat`` take ``token=`` too.
"""

from ._generated.roleplay.v1 import (
    character_pb2,
    character_pb2_grpc,
    chat_session_pb2,
    chat_session_pb2_grpc,
    lorebook_pb2,
    lorebook_pb2_grpc,
    message_pb2,
    message_pb2_grpc,
    samplers_pb2,
    settings_pb2,
    settings_pb2_grpc,
    usage_pb2,
    usage_pb2_grpc,
    user_pb2,
    user_pb2_grpc,
    user_profile_pb2,
    user_profile_pb2_grpc,
)
from .helpers import (
    Backoff,
    ProtocolError,
    ReconnectFailed,
    ReplyStream,
    TOKEN_ENV,
    connect,
    continue_reply,
    regenerate,
    send_message,
    watch_chat,
    with_token,
)

__all__ = [
    "Backoff",
    "ProtocolError",
    "ReconnectFailed",
    "ReplyStream",
    "TOKEN_ENV",
    "character_pb2",
    "character_pb2_grpc",
    "chat_session_pb2",
    "chat_session_pb2_grpc",
    "connect",
    "continue_reply",
    "lorebook_pb2",
    "lorebook_pb2_grpc",
    "message_pb2",
    "message_pb2_grpc",
    "regenerate",
    "samplers_pb2",
    "send_message",
    "settings_pb2",
    "settings_pb2_grpc",
    "usage_pb2",
    "usage_pb2_grpc",
    "user_pb2",
    "user_pb2_grpc",
    "user_profile_pb2",
    "user_profile_pb2_grpc",
    "watch_chat",
    "with_token",
]
