"""The helpers against a scripted in-process MessageService: overlaps, gaps,
aborted streams and give-ups, deterministically and without the real server."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from roleplay_client import (
    Backoff,
    ProtocolError,
    ReconnectFailed,
    chat_session_pb2,
    connect,
    continue_reply,
    message_pb2,
    message_pb2_grpc,
    regenerate,
    send_message,
    watch_chat,
    with_token,
)

FAST = Backoff(initial=0.01, maximum=0.05, max_attempts=3)
END = object()  # end the stream with OK status, before any terminal event


def started(stream_id="s1", **fields):
    return message_pb2.GenerationEvent(
        started=message_pb2.Started(stream_id=stream_id, chat_session_id="c1", **fields)
    )


def delta(offset, text, stream_id="s1"):
    return message_pb2.GenerationEvent(delta=message_pb2.Delta(stream_id=stream_id, offset=offset, text=text))


def cancelled(partial_length, stream_id="s1"):
    return message_pb2.GenerationEvent(
        cancelled=message_pb2.Cancelled(stream_id=stream_id, partial_length=partial_length)
    )


def completed(content, stream_id="s1"):
    message = chat_session_pb2.Message(content=content, status=chat_session_pb2.MESSAGE_STATUS_COMPLETED)
    return message_pb2.GenerationEvent(
        completed=message_pb2.Completed(stream_id=stream_id, message=message, finish_reason="stop")
    )


HEARTBEAT = message_pb2.GenerationEvent(heartbeat=message_pb2.Heartbeat())


class Scripted(message_pb2_grpc.MessageServiceServicer):
    """Each call plays the next script: events, then optionally a status code
    to abort with, or END."""

    def __init__(self):
        self.scripts: list[list] = []
        self.requests: list[tuple[str, object]] = []
        # The authorization metadata of each call (None: none), in order.
        self.authorizations: list[str | None] = []
        self.target = ""

    def AddUserMessageStreaming(self, request, context):
        self._record("add", request, context)
        yield from self._play(context)

    def RegenerateReply(self, request, context):
        self._record("regenerate", request, context)
        yield from self._play(context)

    def ContinueReply(self, request, context):
        self._record("continue", request, context)
        yield from self._play(context)

    def SubscribeChatSession(self, request, context):
        self._record("subscribe", request, context)
        yield from self._play(context)

    def GetStreamStatus(self, request, context):
        self._record("status", request, context)
        return message_pb2.StreamStatus()

    def _record(self, kind, request, context):
        self.requests.append((kind, request))
        self.authorizations.append(dict(context.invocation_metadata()).get("authorization"))

    def _play(self, context):
        script = self.scripts.pop(0) if self.scripts else [grpc.StatusCode.UNAVAILABLE]
        for item in script:
            if isinstance(item, grpc.StatusCode):
                context.abort(item, "scripted")
            if item is END:
                return
            yield item

    def resumes(self):
        return [
            (r.resume.stream_id, r.resume.offset) if r.HasField("resume") else None
            for kind, r in self.requests
            if kind == "subscribe"
        ]


@pytest.fixture
def scripted():
    servicer = Scripted()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    message_pb2_grpc.add_MessageServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.target = f"127.0.0.1:{port}"
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, channel
    finally:
        channel.close()
        server.stop(grace=None).wait(5)


def test_overlapping_deltas_are_not_repeated(scripted):
    servicer, channel = scripted
    servicer.scripts = [
        [
            started(),
            delta(0, "Hé"),  # 3 bytes
            delta(0, "Hé, 🎭"),  # repeats "Hé"
            delta(3, ", 🎭!"),  # repeats ", 🎭"
            delta(0, "Hé"),  # nothing new
            completed("Hé, 🎭!"),
        ]
    ]
    reply = send_message(channel, "c1", "hi")
    assert list(reply) == ["Hé", ", 🎭", "!"]
    assert reply.offset == len("Hé, 🎭!".encode())
    assert reply.outcome.completed.message.content == "Hé, 🎭!"


def test_unavailable_mid_reply_resumes_at_the_byte_offset(scripted):
    servicer, channel = scripted
    servicer.scripts = [
        [started(), delta(0, "ab"), delta(2, "cé"), grpc.StatusCode.UNAVAILABLE],
        [started(), delta(1, "bcé🎭"), END],  # overlaps, then the stream just ends
        [started(), delta(9, "!"), completed("abcé🎭!")],
    ]
    reply = send_message(channel, "c1", "hi", backoff=FAST)
    assert "".join(reply) == "abcé🎭!"
    assert servicer.resumes() == [("s1", 5), ("s1", 9)]
    assert reply.reconnects == 2


def test_events_mode_trims_overlaps_and_hides_resume_echoes(scripted):
    servicer, channel = scripted
    servicer.scripts = [
        [started("a"), delta(0, "one", "a"), completed("one", "a"), grpc.StatusCode.UNAVAILABLE],
        # Resuming an ended reply repeats its Started and end; then a new reply.
        [started("a"), completed("one", "a"), HEARTBEAT, started("b"), delta(0, "tw", "b"), END],
        [started("b"), delta(1, "wo", "b"), completed("two", "b")],
    ]
    watch = watch_chat(channel, "c1", events=True, backoff=FAST)
    events = []
    for event in watch:
        events.append(event)
        if event.WhichOneof("event") == "completed" and event.completed.stream_id == "b":
            break
    watch.close()
    assert events == [
        started("a"),
        delta(0, "one", "a"),
        completed("one", "a"),
        HEARTBEAT,
        started("b"),
        delta(0, "tw", "b"),
        delta(2, "o", "b"),
        completed("two", "b"),
    ]
    assert servicer.resumes() == [None, ("a", 3), ("b", 2)]


def test_watch_chat_starts_from_a_given_resume_position(scripted):
    servicer, channel = scripted
    servicer.scripts = [
        [started("a"), delta(2, "cd", "a"), completed("abcd", "a"), started("b"), delta(0, "x", "b"), END]
    ]
    watch = watch_chat(channel, "c1", resume=("a", 2), backoff=FAST)
    pieces = []
    for piece in watch:
        pieces.append(piece)
        if piece == "x":
            break
    watch.close()
    # Text mode runs the replies together; events=True tells them apart.
    assert pieces == ["cd", "x"]
    assert (watch.stream_id, watch.offset) == ("b", 1)
    assert servicer.resumes() == [("a", 2)]


def test_a_gap_is_a_protocol_error(scripted):
    servicer, channel = scripted
    servicer.scripts = [[started(), delta(0, "ab"), delta(3, "d")]]
    reply = send_message(channel, "c1", "hi")
    assert next(reply) == "ab"
    with pytest.raises(ProtocolError, match="gap"):
        next(reply)


def test_an_end_that_disagrees_with_the_bytes_received_is_a_protocol_error(scripted):
    servicer, channel = scripted
    servicer.scripts = [[started(), delta(0, "ab"), completed("abc")]]
    with pytest.raises(ProtocolError, match="3 bytes but 2"):
        list(send_message(channel, "c1", "hi"))


def test_unavailable_before_started_is_raised_not_retried(scripted):
    servicer, channel = scripted
    servicer.scripts = [[grpc.StatusCode.UNAVAILABLE]]
    with pytest.raises(grpc.RpcError) as err:
        list(send_message(channel, "c1", "hi", backoff=FAST))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [kind for kind, _ in servicer.requests] == ["add"]


def test_other_errors_are_raised(scripted):
    servicer, channel = scripted
    servicer.scripts = [[started(), delta(0, "ab"), grpc.StatusCode.UNAVAILABLE], [grpc.StatusCode.FAILED_PRECONDITION]]
    reply = send_message(channel, "c1", "hi", backoff=FAST)
    assert next(reply) == "ab"
    with pytest.raises(grpc.RpcError) as err:
        next(reply)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_gives_up_after_max_attempts(scripted):
    servicer, channel = scripted
    servicer.scripts = [[started(), delta(0, "abc"), grpc.StatusCode.UNAVAILABLE]]  # then UNAVAILABLE forever
    reply = send_message(channel, "c1", "hi", backoff=FAST)
    assert next(reply) == "abc"
    with pytest.raises(ReconnectFailed) as err:
        next(reply)
    assert (err.value.stream_id, err.value.offset) == ("s1", 3)
    assert isinstance(err.value.__cause__, grpc.RpcError)
    assert servicer.resumes() == [("s1", 3)] * FAST.max_attempts


def test_backoff_grows_exponentially_with_jitter():
    backoff = Backoff(initial=0.1, multiplier=2.0, maximum=1.0, jitter=0.5)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(base * 0.5 <= d <= base for d in delays)
        assert len(delays) > 1


# --- Tokens ------------------------------------------------------------------


def test_the_token_goes_with_the_first_call_and_every_resume(scripted):
    servicer, channel = scripted
    servicer.scripts = [
        [started(), delta(0, "ab"), grpc.StatusCode.UNAVAILABLE],
        [started(), delta(2, "c"), END],
        [started(), completed("abc")],
    ]
    reply = send_message(servicer.target, "c1", "hi", backoff=FAST, token="tok-1")
    assert "".join(reply) == "abc"
    assert [kind for kind, _ in servicer.requests] == ["add", "subscribe", "subscribe"]
    assert servicer.authorizations == ["Bearer tok-1"] * 3


def test_watch_chat_adds_the_token_to_a_given_channel(scripted):
    servicer, channel = scripted
    servicer.scripts = [[started(), delta(0, "ab"), grpc.StatusCode.UNAVAILABLE], [started(), delta(2, "c"), END]]
    watch = watch_chat(channel, "c1", backoff=FAST, token="tok-2")
    pieces = []
    for piece in watch:
        pieces.append(piece)
        if "".join(pieces) == "abc":
            break
    watch.close()
    assert servicer.authorizations == ["Bearer tok-2"] * 2
    # The caller's channel is still open: the helper closed only its own call.
    message_pb2_grpc.MessageServiceStub(channel).GetStreamStatus(
        message_pb2.GetStreamStatusRequest(chat_session_id="c1"), timeout=5
    )
    assert servicer.authorizations[-1] is None


def test_connect_takes_the_token_from_the_environment(scripted, monkeypatch):
    servicer, _ = scripted
    monkeypatch.setenv("ROLEPLAY_TOKEN", "tok-env")
    request = message_pb2.GetStreamStatusRequest(chat_session_id="c1")
    with connect(servicer.target) as channel:
        message_pb2_grpc.MessageServiceStub(channel).GetStreamStatus(request, timeout=5)
    with connect(servicer.target, token="tok-arg") as channel:
        message_pb2_grpc.MessageServiceStub(channel).GetStreamStatus(request, timeout=5)
    with connect(servicer.target, token="") as channel:  # explicitly none
        message_pb2_grpc.MessageServiceStub(channel).GetStreamStatus(request, timeout=5)
    servicer.scripts = [[started(), completed("")]]
    assert list(send_message(servicer.target, "c1", "hi")) == []
    assert servicer.authorizations == ["Bearer tok-env", "Bearer tok-arg", None, "Bearer tok-env"]


def test_a_call_s_own_authorization_wins_and_the_token_is_not_shown(scripted):
    servicer, channel = scripted
    authed = with_token(channel, "tok-secret")
    stub = message_pb2_grpc.MessageServiceStub(authed)
    request = message_pb2.GetStreamStatusRequest(chat_session_id="c1")
    stub.GetStreamStatus(request, timeout=5, metadata=[("authorization", "Bearer other")])
    stub.GetStreamStatus(request, timeout=5)
    assert servicer.authorizations == ["Bearer other", "Bearer tok-secret"]
    assert "tok-secret" not in repr(authed) + repr(authed.__dict__)
    with pytest.raises(ValueError) as err:
        with_token(channel, "tok\nsecret")
    assert "secret" not in str(err.value)


# --- Regenerate and continue ---------------------------------------------------


def test_regenerate_resumes_like_send_message(scripted):
    servicer, channel = scripted
    swipe = dict(kind=message_pb2.REPLY_KIND_REGENERATE, alternative_index=1, alternative_count=2)
    servicer.scripts = [
        [started(**swipe), delta(0, "Nouvelle "), grpc.StatusCode.UNAVAILABLE],
        [started(**swipe), delta(9, "réponse"), completed("Nouvelle réponse")],
    ]
    reply = regenerate(channel, "c1", backoff=FAST)
    assert "".join(reply) == "Nouvelle réponse"
    assert [kind for kind, _ in servicer.requests] == ["regenerate", "subscribe"]
    assert servicer.requests[0][1].chat_session_id == "c1"
    assert servicer.resumes() == [("s1", 9)]
    assert (reply.started.alternative_index, reply.started.alternative_count) == (1, 2)
    assert reply.outcome.completed.message.content == "Nouvelle réponse"


def test_continue_yields_the_new_text_from_continues_from(scripted):
    servicer, channel = scripted
    old = "Il était une fois "  # 19 bytes
    more = dict(kind=message_pb2.REPLY_KIND_CONTINUE, continues_from=len(old.encode()))
    servicer.scripts = [
        [started(**more), delta(19, "un café"), grpc.StatusCode.UNAVAILABLE],
        # The resume asks for bytes of the whole message, and gets the rest.
        [started(**more), delta(27, " 🎭"), completed(old + "un café 🎭")],
    ]
    reply = continue_reply(channel, "c1", backoff=FAST)
    assert reply.offset == 0 and reply.started is None
    assert list(reply) == ["un café", " 🎭"]
    assert [kind for kind, _ in servicer.requests] == ["continue", "subscribe"]
    assert servicer.resumes() == [("s1", len((old + "un café").encode()))]
    assert reply.started.continues_from == 19
    assert reply.offset == len((old + "un café 🎭").encode())
    assert reply.outcome.completed.message.content == old + "un café 🎭"


def test_a_continuation_s_old_text_is_not_repeated(scripted):
    servicer, channel = scripted
    # A server that sends a watcher the whole message so far, from byte 0.
    servicer.scripts = [[started(continues_from=3), delta(0, "abcdé"), delta(6, "f"), completed("abcdéf")]]
    watch = watch_chat(channel, "c1", events=True, backoff=FAST)
    events = []
    for event in watch:
        events.append(event)
        if event.WhichOneof("event") == "completed":
            break
    watch.close()
    assert events[1:] == [delta(3, "dé"), delta(6, "f"), completed("abcdéf")]


def test_a_cancelled_continuation_s_partial_length(scripted):
    servicer, channel = scripted
    servicer.scripts = [
        [started(continues_from=3), delta(3, "de"), cancelled(5)],  # counted from the message's start
        [started(continues_from=3), delta(3, "de"), cancelled(2)],  # or the new bytes alone
        [started(continues_from=3), delta(3, "de"), cancelled(4)],
    ]
    for _ in range(2):
        reply = continue_reply(channel, "c1")
        assert "".join(reply) == "de"
        assert reply.outcome.WhichOneof("event") == "cancelled"
    with pytest.raises(ProtocolError, match="4 bytes but 5"):
        list(continue_reply(channel, "c1"))


def test_a_drop_before_started_of_a_regenerate_is_not_retried(scripted):
    servicer, channel = scripted
    servicer.scripts = [[grpc.StatusCode.UNAVAILABLE]]
    with pytest.raises(grpc.RpcError) as err:
        list(regenerate(channel, "c1", backoff=FAST))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [kind for kind, _ in servicer.requests] == ["regenerate"]


def test_watch_chat_passes_chat_changed_on_in_events_mode(scripted):
    servicer, channel = scripted
    changed = message_pb2.GenerationEvent(
        chat_changed=message_pb2.ChatChanged(
            chat_session_id="c1", kind=message_pb2.CHAT_CHANGE_KIND_SELECTED, message_ids=["m1"]
        )
    )
    servicer.scripts = [[changed, started(), delta(0, "x"), completed("x"), END]]
    watch = watch_chat(channel, "c1", events=True, backoff=FAST)
    events = []
    for event in watch:
        events.append(event)
        if event.WhichOneof("event") == "completed":
            break
    watch.close()
    assert events[0] == changed
    # Text mode skips it.
    servicer.scripts = [[changed, started(), delta(0, "x"), completed("x"), END]]
    watch = watch_chat(channel, "c1", backoff=FAST)
    assert next(watch) == "x"
    watch.close()
