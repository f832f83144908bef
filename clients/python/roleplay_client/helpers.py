"""Following replies across dropped connections, each byte exactly once.

A reply ("generation") is named by the ``stream_id`` of its ``Started`` event,
and every ``Delta`` says at which UTF-8 *byte* offset of the reply its text
starts. A client that loses its connection calls ``SubscribeChatSession`` with
``resume: {stream_id, offset}``, where ``offset`` is the number of bytes it
already has, and the server sends the rest. The helpers here do that for
you:

``send_message(target, chat_id, content)``
    Sends a message and yields the reply's text pieces until the reply ends.
    If the connection drops after the reply started, it resumes the reply with
    ``SubscribeChatSession`` and carries on.

``regenerate(target, chat_id)``
    A new alternative ("swipe") of the chat's last reply (``RegenerateReply``),
    followed like ``send_message``.

``continue_reply(target, chat_id)``
    More text appended to the chat's last reply (``ContinueReply``), followed
    like ``send_message``. Its offsets count from the start of the whole
    message: the stream yields only the new text, from
    ``started.continues_from``; ``outcome.completed.message.content`` is the
    whole message.

``watch_chat(target, chat_id, resume=None)``
    Follows a chat indefinitely: the live reply, then every later one (with
    heartbeats while idle), re-subscribing with the current position whenever
    the connection drops.

All return a :class:`ReplyStream`: iterate it for ``str`` pieces (or for
``GenerationEvent`` messages with ``events=True``), read ``stream_id``,
``offset``, ``started`` and ``outcome`` from it, and ``close()`` it (or leave the loop) to
stop. Reconnecting uses exponential backoff with jitter (:class:`Backoff`) and
gives up with :class:`ReconnectFailed` after ``max_attempts`` failed tries in
a row. Every delta is checked against the bytes received so far: text that
was already received is dropped, and a gap raises :class:`ProtocolError`.

Example::

    from roleplay_client import send_message

    for piece in send_message("localhost:50051", chat_id, "Hello!"):
        print(piece, end="", flush=True)

Authentication: once any user of the server has a token, every call needs
``authorization: Bearer <token>`` metadata. ``connect(target, token=...)``
(default: ``$ROLEPLAY_TOKEN``) makes a channel that sends it with every call,
unary and streaming, and ``with_token(channel, token)`` adds it to a channel
made elsewhere; the helpers take ``token=`` too, so the resumed calls carry it
as well. The token is never logged nor shown in a ``repr``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Union

import grpc

from ._generated.roleplay.v1 import message_pb2, message_pb2_grpc

__all__ = [
    "Backoff",
    "ProtocolError",
    "ReconnectFailed",
    "ReplyStream",
    "TOKEN_ENV",
    "connect",
    "continue_reply",
    "regenerate",
    "send_message",
    "watch_chat",
    "with_token",
]

#: Status codes after which a stream is resumed rather than the error raised:
#: the connection dropped, or the server is restarting.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})

#: Channel options for :func:`connect`: reconnect quickly after a drop, and
#: notice a dead connection (the server also sends a Heartbeat event every
#: 15 s while a watched chat is idle).
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)

_TERMINAL = ("completed", "failed", "cancelled")

ChannelOrTarget = Union[grpc.Channel, str]
Resume = Union[message_pb2.ResumePosition, tuple[str, int], None]


#: The environment variable :func:`connect` reads the token from when none is given.
TOKEN_ENV = "ROLEPLAY_TOKEN"


def connect(target: str, *, token: str | None = None) -> grpc.Channel:
    """An insecure (plaintext) channel to ``host:port`` with :data:`CHANNEL_OPTIONS`.

    With a ``token`` (default: the ``ROLEPLAY_TOKEN`` environment variable, if
    set and not empty), every call on the channel, unary or streaming, carries
    ``authorization: Bearer <token>``. ``token=""`` sends none, whatever the
    environment says. Closing the channel closes the underlying one.
    """
    channel = grpc.insecure_channel(target, options=list(CHANNEL_OPTIONS))
    return with_token(channel, os.environ.get(TOKEN_ENV) if token is None else token)


def with_token(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    """``channel`` with ``authorization: Bearer <token>`` added to every call
    (unary and streaming) that does not carry its own ``authorization``
    metadata. Returns ``channel`` itself when ``token`` is ``None`` or blank.
    Closing the returned channel closes ``channel``.
    """
    token = (token or "").strip()
    if not token:
        return channel
    return grpc.intercept_channel(channel, _BearerToken(token))


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method, timeout, metadata, credentials, wait_for_ready, compression):
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str):
        # Metadata values are printable ASCII; say so without showing the token.
        if any(not (" " < c <= "~") for c in token):
            raise ValueError("the token has characters that gRPC metadata cannot carry")
        self.__header = ("authorization", f"Bearer {token}")

    def __repr__(self) -> str:
        return "<bearer token (hidden)>"

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        if not any(key.lower() == "authorization" for key, _ in metadata):
            metadata.append(self.__header)
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


class ProtocolError(Exception):
    """The server sent events that break the offset contract (a gap in the text,
    a delta for another reply, ...)."""


class ReconnectFailed(Exception):
    """Reconnecting failed ``max_attempts`` times in a row. ``stream_id`` and
    ``offset`` say where the reply stands, so it can be resumed later; the last
    error is ``__cause__``."""

    def __init__(self, message: str, stream_id: str | None, offset: int):
        super().__init__(message)
        self.stream_id = stream_id
        self.offset = offset


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter between reconnection attempts.

    Attempt ``n`` (from 1) waits ``min(maximum, initial * multiplier**(n-1))``
    seconds, less a random part of up to ``jitter`` of it. The count restarts
    whenever a connection delivers something new.
    """

    initial: float = 0.1
    multiplier: float = 2.0
    maximum: float = 5.0
    jitter: float = 0.5
    max_attempts: int = 8

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.multiplier ** (attempt - 1))
        return base * (1.0 - self.jitter * random.random())


class ReplyStream(Iterator):
    """An iterator over a chat's reply text (or events) that survives dropped
    connections. Made by :func:`send_message`, :func:`regenerate`,
    :func:`continue_reply` and :func:`watch_chat`.

    Attributes, updated as events arrive:

    - ``stream_id``: the reply being followed (``None`` before ``Started``).
    - ``offset``: UTF-8 bytes of that reply received so far. Offsets count
      from the start of the whole message, so for a continuation
      (``started.continues_from`` > 0) this starts at ``continues_from``: the
      bytes of the message that existed before, which the stream does not
      yield again.
    - ``started``: the reply's ``Started`` message (kind, alternative index
      and count, ``continues_from``), once it arrived, else ``None``.
    - ``outcome``: the terminal ``GenerationEvent`` (completed, failed or
      cancelled) of that reply, once it arrived, else ``None``.
    - ``reconnects``: how many times the stream was re-subscribed.
    """

    def __init__(
        self,
        channel_or_target: ChannelOrTarget,
        chat_id: str,
        open_first: Callable[[message_pb2_grpc.MessageServiceStub], Iterator] | None,
        *,
        follow_later: bool,
        events: bool,
        resume: Resume = None,
        backoff: Backoff | None = None,
        retry_codes: frozenset = RETRYABLE_CODES,
        token: str | None = None,
    ):
        if isinstance(channel_or_target, str):
            self._channel = connect(channel_or_target, token=token)
            self._owns_channel = True
        else:
            # Closing the wrapper would close the caller's channel: not owned.
            self._channel = with_token(channel_or_target, token)
            self._owns_channel = False
        self._stub = message_pb2_grpc.MessageServiceStub(self._channel)
        self.chat_id = chat_id
        self._follow_later = follow_later
        self._events = events
        self._backoff = backoff or Backoff()
        self._retry_codes = retry_codes
        self.stream_id: str | None = None
        self.offset = 0
        self.started: message_pb2.Started | None = None
        self.outcome: message_pb2.GenerationEvent | None = None
        self.reconnects = 0
        # Whether this stream already passed on the current reply's Started.
        self._announced = False
        if resume is not None:
            if isinstance(resume, message_pb2.ResumePosition):
                self.stream_id, self.offset = resume.stream_id, int(resume.offset)
            else:
                self.stream_id, self.offset = resume[0], int(resume[1])
        self._gen = self._run(open_first or (lambda stub: self._subscribe()))

    # Iterator protocol -----------------------------------------------------

    def __iter__(self) -> ReplyStream:
        return self

    def __next__(self):
        return next(self._gen)

    def close(self) -> None:
        """Stops following: cancels the call and closes a channel made here."""
        self._gen.close()

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # Internals ---------------------------------------------------------------

    def _subscribe(self):
        request = message_pb2.SubscribeChatSessionRequest(chat_session_id=self.chat_id)
        if self.stream_id is not None:
            request.resume.stream_id = self.stream_id
            request.resume.offset = self.offset
        return self._stub.SubscribeChatSession(request)

    def _run(self, open_first):
        call = None
        attempt = 0
        try:
            call = open_first(self._stub)
            while True:
                try:
                    for event in call:
                        item, progressed = self._accept(event)
                        if progressed:
                            attempt = 0
                        if item is not None:
                            yield item
                        if self.outcome is not None and not self._follow_later:
                            return
                    if self.stream_id is None and not self._follow_later:
                        raise ProtocolError("the reply stream ended before Started")
                    error: Exception = ConnectionError("the stream ended before the reply did")
                except grpc.RpcError as err:
                    if not isinstance(err, grpc.Call) or err.code() not in self._retry_codes:
                        raise
                    if self.stream_id is None and not self._follow_later:
                        # The message may or may not have been stored: without
                        # a stream id there is nothing to resume, and sending
                        # it again could store it twice.
                        raise
                    error = err
                call.cancel()
                attempt += 1
                if attempt > self._backoff.max_attempts:
                    raise ReconnectFailed(
                        f"gave up after {self._backoff.max_attempts} reconnection attempts "
                        f"(stream {self.stream_id}, {self.offset} bytes received): {error}",
                        self.stream_id,
                        self.offset,
                    ) from error
                time.sleep(self._backoff.delay(attempt))
                self.reconnects += 1
                call = self._subscribe()
        finally:
            if call is not None:
                call.cancel()
            if self._owns_channel:
                self._channel.close()

    def _accept(self, event: message_pb2.GenerationEvent):
        """Updates the position from one event. Returns what to yield (or
        ``None``) and whether the event was news (not an echo of what this
        stream already had)."""
        kind = event.WhichOneof("event")
        if kind == "started":
            stream_id = event.started.stream_id
            if stream_id == self.stream_id:
                # A resume starts with the reply's Started again.
                if self._announced:
                    return None, False
            elif self._follow_later or self.stream_id is None:
                # A continuation's new text starts after the message's
                # existing bytes; any other reply starts at 0.
                self.stream_id, self.offset, self.outcome = stream_id, int(event.started.continues_from), None
            else:
                raise ProtocolError(f"expected reply {self.stream_id}, got Started of {stream_id}")
            self.started = event.started
            self._announced = True
            return (event if self._events else None), True

        if kind == "delta":
            delta = event.delta
            self._check_stream(kind, delta.stream_id)
            if self.outcome is not None:
                raise ProtocolError(f"a delta after the end of reply {self.stream_id}")
            data = delta.text.encode("utf-8")
            if delta.offset > self.offset:
                raise ProtocolError(
                    f"gap in reply {self.stream_id}: a delta starts at byte {delta.offset} "
                    f"but only {self.offset} bytes were received"
                )
            overlap = self.offset - delta.offset
            if overlap >= len(data):
                return None, False  # all of it was received already
            try:
                text = data[overlap:].decode("utf-8")
            except UnicodeDecodeError as err:
                raise ProtocolError(f"a delta overlaps inside a UTF-8 character: {err}") from err
            start = self.offset
            self.offset += len(data) - overlap
            if not self._events:
                return text, True
            if overlap:
                event = message_pb2.GenerationEvent(
                    delta=message_pb2.Delta(stream_id=delta.stream_id, offset=start, text=text)
                )
            return event, True

        if kind in _TERMINAL:
            ended = getattr(event, kind)
            self._check_stream(kind, ended.stream_id)
            if self.outcome is not None:
                return None, False  # a resume of a reply that had ended repeats its end
            length = (
                len(ended.message.content.encode("utf-8")) if kind == "completed" else ended.partial_length
            )
            # partial_length counts the whole message like the offsets do;
            # for a continuation, a count of the new bytes alone is taken too.
            if length != self.offset and not (kind != "completed" and length == self.offset - self._base()):
                raise ProtocolError(
                    f"reply {self.stream_id} ended with {length} bytes but {self.offset} were received"
                )
            self.outcome = event
            return (event if self._events else None), True

        if kind in ("heartbeat", "chat_changed"):
            # chat_changed: messages were edited, selected, deleted or
            # rewound; a watcher reloads them (ListMessages).
            return (event if self._events else None), True

        return None, False  # an event kind newer than this client

    def _base(self) -> int:
        """Where the followed reply's own text starts: ``continues_from`` for
        a continuation, else 0."""
        if self.started is None or self.started.stream_id != self.stream_id:
            return 0
        return int(self.started.continues_from)

    def _check_stream(self, kind: str, stream_id: str) -> None:
        if self.stream_id is None:
            raise ProtocolError(f"{kind} before Started")
        if stream_id and stream_id != self.stream_id:
            raise ProtocolError(f"{kind} of reply {stream_id} while following {self.stream_id}")


def send_message(
    channel_or_target: ChannelOrTarget,
    chat_id: str,
    content: str,
    *,
    events: bool = False,
    backoff: Backoff | None = None,
    retry_codes: frozenset = RETRYABLE_CODES,
    token: str | None = None,
) -> ReplyStream:
    """Sends ``content`` to the chat and yields the reply's text pieces
    (``GenerationEvent`` messages with ``events=True``) until it ends.

    Calls ``AddUserMessageStreaming``; if the connection drops after the reply
    started, continues with ``SubscribeChatSession{resume: {stream_id,
    offset}}`` so the reply arrives exactly once. Errors before ``Started``
    (NOT_FOUND, ABORTED, a drop before the reply started, ...) are raised as
    ``grpc.RpcError``: the message is never sent twice. When iteration ends,
    ``outcome`` holds the terminal event (completed, failed or cancelled).

    ``channel_or_target`` is a ``grpc.Channel`` or a ``host:port`` string (a
    channel is then made with :func:`connect` and closed at the end). ``token``
    is sent as ``authorization: Bearer <token>`` on every call, the first one
    and each resume. For a target it goes to :func:`connect` (so ``None`` means
    ``$ROLEPLAY_TOKEN``); for a channel it is added with :func:`with_token`
    (``None`` adds nothing: the channel may carry one already, from
    ``connect(target, token=...)``).
    """
    request = message_pb2.AddUserMessageRequest(chat_session_id=chat_id, content=content)
    return ReplyStream(
        channel_or_target,
        chat_id,
        lambda stub: stub.AddUserMessageStreaming(request),
        follow_later=False,
        events=events,
        backoff=backoff,
        retry_codes=retry_codes,
        token=token,
    )


def regenerate(
    channel_or_target: ChannelOrTarget,
    chat_id: str,
    *,
    events: bool = False,
    backoff: Backoff | None = None,
    retry_codes: frozenset = RETRYABLE_CODES,
    token: str | None = None,
) -> ReplyStream:
    """Asks for a new alternative ("swipe") of the chat's last reply and
    yields its text pieces (``GenerationEvent`` messages with ``events=True``)
    until it ends. The new alternative is selected; earlier ones stay
    (``ListAlternatives``, ``SelectAlternative``). When the chat ends with a
    user message instead, this answers it.

    Calls ``RegenerateReply`` and follows it exactly like
    :func:`send_message`: after a drop once the reply started it resumes with
    ``SubscribeChatSession{resume: {stream_id, offset}}``; errors before
    ``Started`` (ABORTED while a reply runs, FAILED_PRECONDITION when there is
    nothing to answer, a drop, ...) are raised and never retried, so no second
    alternative is started. ``started.alternative_index`` and
    ``started.alternative_count`` say which alternative this is.
    """
    request = message_pb2.RegenerateReplyRequest(chat_session_id=chat_id)
    return ReplyStream(
        channel_or_target,
        chat_id,
        lambda stub: stub.RegenerateReply(request),
        follow_later=False,
        events=events,
        backoff=backoff,
        retry_codes=retry_codes,
        token=token,
    )


def continue_reply(
    channel_or_target: ChannelOrTarget,
    chat_id: str,
    *,
    events: bool = False,
    backoff: Backoff | None = None,
    retry_codes: frozenset = RETRYABLE_CODES,
    token: str | None = None,
) -> ReplyStream:
    """Asks the model to go on from the end of the chat's last reply and
    yields the *new* text pieces (``GenerationEvent`` messages with
    ``events=True``) until it ends; the text is appended to that message (the
    same alternative).

    Calls ``ContinueReply`` and follows it like :func:`send_message`. Offsets
    count from the start of the whole message: the new text starts at
    ``started.continues_from``, which is where ``offset`` starts, so after the
    reply ``offset`` is the whole message's length in UTF-8 bytes and a resume
    asks for the rest of the whole message. What the iteration yields is only
    the new text; the whole message is ``outcome.completed.message.content``
    (the old text followed by the new). Errors before ``Started``
    (FAILED_PRECONDITION when the last message is not an assistant reply,
    ABORTED, a drop, ...) are raised and never retried.
    """
    request = message_pb2.ContinueReplyRequest(chat_session_id=chat_id)
    return ReplyStream(
        channel_or_target,
        chat_id,
        lambda stub: stub.ContinueReply(request),
        follow_later=False,
        events=events,
        backoff=backoff,
        retry_codes=retry_codes,
        token=token,
    )


def watch_chat(
    channel_or_target: ChannelOrTarget,
    chat_id: str,
    resume: Resume = None,
    *,
    events: bool = False,
    backoff: Backoff | None = None,
    retry_codes: frozenset = RETRYABLE_CODES,
    token: str | None = None,
) -> ReplyStream:
    """Follows a chat: yields the text pieces of the live reply (from
    ``resume``, a ``(stream_id, offset)`` pair or ``ResumePosition``, when
    given), then of every later reply, until closed.

    With ``events=True`` it yields ``GenerationEvent`` messages instead:
    ``Started``, ``Delta`` (trimmed of anything already received),
    ``Heartbeat``, ``ChatChanged`` (messages edited, selected, deleted or
    rewound: reload them) and the terminal event of each reply, each once, as
    if the connection had never dropped. Replies of every kind are followed
    (sent, regenerated, continued); a continuation's text starts at its
    ``Started.continues_from``, the message's earlier bytes are not repeated. After a drop (UNAVAILABLE, or the stream
    ending) it re-subscribes with the current position, with backoff.

    A reply that both starts and ends while the connection is down is not
    seen; ``ListMessages`` has it. ``channel_or_target`` and ``token`` are as
    for :func:`send_message`.
    """
    return ReplyStream(
        channel_or_target,
        chat_id,
        None,
        follow_later=True,
        events=events,
        resume=resume,
        backoff=backoff,
        retry_codes=retry_codes,
        token=token,
    )
