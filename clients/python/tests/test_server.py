"""Against the real roleplay-server binary, with a fake upstream."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from conftest import (
    API_KEY,
    RPC_TIMEOUT,
    list_messages,
    open_chat,
    run_cli,
    slow_reply_chunks,
    start_server,
    wait_until,
)
from roleplay_client import (
    Backoff,
    chat_session_pb2,
    chat_session_pb2_grpc,
    connect,
    continue_reply,
    message_pb2,
    message_pb2_grpc,
    regenerate,
    send_message,
    user_pb2,
    user_pb2_grpc,
    watch_chat,
)

COMPLETED = chat_session_pb2.MESSAGE_STATUS_COMPLETED
FAST = Backoff(initial=0.05, maximum=1.0, max_attempts=10)


def test_full_conversation(server, upstream):
    upstream.chunks = ["Well ", "met, ", "traveller", "! ", "Café? 🎭"]
    chat = open_chat(server.channel)

    reply = send_message(server.channel, chat.id, "Sing me something.")
    text = "".join(reply)

    assert text == "Well met, traveller! Café? 🎭"
    assert reply.outcome is not None and reply.outcome.WhichOneof("event") == "completed"
    assert reply.outcome.completed.message.content == text
    assert reply.offset == len(text.encode("utf-8"))
    assert reply.reconnects == 0

    messages = list_messages(server.channel, chat.id)
    assert [(m.role, m.content, m.status) for m in messages] == [
        (chat_session_pb2.ROLE_USER, "Sing me something.", COMPLETED),
        (chat_session_pb2.ROLE_ASSISTANT, text, COMPLETED),
    ]
    assert messages[1].stream_id == reply.stream_id

    request = upstream.requests[-1]
    assert request["body"]["stream"] is True
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert request["body"]["messages"][-1] == {"role": "user", "content": "Sing me something."}


def test_send_message_survives_a_cut_connection(server, upstream, proxy):
    upstream.chunks = slow_reply_chunks(40)
    upstream.delay = 0.05
    expected = upstream.reply()
    total = len(expected.encode("utf-8"))
    chat = open_chat(server.channel)

    channel = connect(proxy.address)
    try:
        reply = send_message(channel, chat.id, "Tell me a story.", backoff=FAST)
        received = bytearray()
        pieces = []
        for piece in reply:
            pieces.append(piece)
            received += piece.encode("utf-8")
            if proxy.cuts == 0 and len(received) >= total // 3:
                proxy.cut()
            elif proxy.cuts == 1 and reply.reconnects == 1 and len(received) >= 2 * total // 3:
                proxy.cut()  # and once more, after resuming
    finally:
        channel.close()

    text = "".join(pieces)
    assert text == expected
    assert bytes(received) == expected.encode("utf-8")
    assert proxy.cuts == 2
    assert reply.reconnects >= 2
    assert proxy.accepted >= 3
    assert reply.outcome.WhichOneof("event") == "completed"
    # The reply was really still streaming when the connection was cut.
    assert len(pieces) > 3

    messages = list_messages(server.channel, chat.id)
    assert [(m.role, m.status) for m in messages] == [
        (chat_session_pb2.ROLE_USER, COMPLETED),
        (chat_session_pb2.ROLE_ASSISTANT, COMPLETED),
    ]
    assert messages[1].content == expected


def test_watch_chat_follows_replies_across_cuts(server, upstream, proxy):
    upstream.chunks = slow_reply_chunks(20)
    upstream.delay = 0.03
    first = upstream.reply()
    chat = open_chat(server.channel)
    stub = message_pb2_grpc.MessageServiceStub(server.channel)

    def watchers() -> int:
        status = stub.GetStreamStatus(message_pb2.GetStreamStatusRequest(chat_session_id=chat.id), timeout=5)
        return status.watchers

    def send(content: str):
        # The sender reads its own stream on a direct connection.
        return list(send_message(server.channel, chat.id, content))

    channel = connect(proxy.address)
    watch = watch_chat(channel, chat.id, events=True, backoff=FAST)
    events = []
    senders = []
    collected = threading.Event()
    failure = []

    def consume():
        try:
            for event in watch:
                events.append(event)
                kind = event.WhichOneof("event")
                got = sum(len(e.delta.text.encode()) for e in events if e.WhichOneof("event") == "delta")
                if proxy.cuts == 0 and kind == "delta" and got >= len(first.encode()) // 2:
                    proxy.cut()  # mid-reply
                if proxy.cuts == 1 and kind == "completed":
                    proxy.cut()  # while idle, after the reply ended
                if sum(e.WhichOneof("event") == "completed" for e in events) == 2:
                    break
        except Exception as err:  # noqa: BLE001 - reported by the main thread
            failure.append(err)
        finally:
            collected.set()

    # The watch only calls the server once iterated: drive it from a thread
    # and wait until the server counts the watcher before sending.
    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    try:
        wait_until(lambda: watchers() >= 1, 10, "the watcher to subscribe")

        senders.append(send("First message"))
        # The second reply is only sent once the watcher is back after the idle cut.
        wait_until(lambda: proxy.cuts == 2, 10, "the idle cut")
        wait_until(lambda: watchers() >= 1 and proxy.accepted >= 3, 10, "the watcher to re-subscribe")
        upstream.chunks = ["Second ", "reply ", "✓"]
        upstream.delay = 0.0
        senders.append(send("Second message"))

        assert collected.wait(20), "the watcher did not receive both replies"
        assert not failure, failure
    finally:
        # Closing the channel ends the watch's call, so the consumer stops
        # even when the test failed half-way.
        channel.close()
        consumer.join(10)
        watch.close()

    assert "".join(senders[0]) == first
    assert "".join(senders[1]) == "Second reply ✓"

    kinds = [e.WhichOneof("event") for e in events if e.WhichOneof("event") != "heartbeat"]
    assert kinds[0] == "started" and kinds.count("started") == 2 and kinds.count("completed") == 2
    second_start = kinds.index("started", 1)
    assert kinds[second_start - 1] == "completed" and kinds[-1] == "completed"

    replies: list[str] = []
    for event in events:
        kind = event.WhichOneof("event")
        if kind == "started":
            replies.append("")
        elif kind == "delta":
            # Each delta starts exactly where the previous one ended.
            assert event.delta.offset == len(replies[-1].encode("utf-8"))
            replies[-1] += event.delta.text
    assert replies == [first, "Second reply ✓"]
    assert watch.reconnects >= 2


def test_example_survives_a_cut_connection(server, upstream, proxy):
    upstream.chunks = slow_reply_chunks(30)
    upstream.delay = 0.05
    expected = upstream.reply()
    chat = open_chat(server.channel)
    example = Path(__file__).resolve().parents[1] / "examples" / "chat.py"

    process = subprocess.Popen(
        [sys.executable, str(example), "--target", proxy.address, "--chat-id", chat.id, "Hello, Aria."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    try:
        # Cut once some of the reply went through (the example prints it live).
        stub = message_pb2_grpc.MessageServiceStub(server.channel)

        def halfway() -> bool:
            status = stub.GetStreamStatus(message_pb2.GetStreamStatusRequest(chat_session_id=chat.id), timeout=5)
            return status.streaming and status.text_length >= len(expected.encode()) // 3

        wait_until(halfway, 20, "the reply to be a third done")
        proxy.cut()
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    assert process.returncode == 0, stderr.decode(errors="replace")
    assert stdout.decode("utf-8") == expected + "\n"
    assert "reconnected" in stderr.decode()
    assert proxy.accepted >= 2


def test_send_message_errors_before_started_are_raised(server):
    chat = open_chat(server.channel)
    try:
        list(send_message(server.channel, chat.id, "   "))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        raise AssertionError("an empty message was accepted")


def test_a_token_is_needed_once_a_user_has_one(upstream, tmp_path, monkeypatch):
    # Its own server: adding a user ends single-user mode for good.
    upstream.chunks = ["Hello, ", "Alice", "! Café? 🎭"]
    with start_server(upstream, tmp_path) as server:
        added = run_cli(server, "users", "add", "alice", "--admin")
        # No assertion here shows stdout (nor `added`): it is the token.
        code, stdout, stderr = added.returncode, added.stdout, added.stderr
        del added
        assert code == 0, f"`users add` exited with {code}:\n{stderr}"
        lines = [line.strip() for line in stdout.splitlines()]
        count, blank = len(lines), not all(lines)
        assert count == 1 and not blank, f"expected the token alone on stdout, got {count} line(s)"
        token = lines[0]

        request = user_pb2.GetCurrentUserRequest()
        alice = connect(server.target, token=token)
        wrong = connect(server.target, token="not-a-token")
        try:
            me = user_pb2_grpc.UserServiceStub(alice).GetCurrentUser(request, timeout=10)
            assert (me.name, me.admin, me.active) == ("alice", True, True)

            # No token, or a wrong one: UNAUTHENTICATED. A server in
            # single-user mode notices a user added by the CLI (another
            # process) within a second.
            time.sleep(1.1)
            for channel in (server.channel, wrong):
                try:
                    user_pb2_grpc.UserServiceStub(channel).GetCurrentUser(request, timeout=10)
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
                else:
                    raise AssertionError("a call without a valid token was accepted")

            # The whole conversation as alice (an admin, so she may set the API key).
            chat = open_chat(alice)
            reply = send_message(server.target, chat.id, "Sing me something.", token=token)
            text = "".join(reply)
            assert text == "Hello, Alice! Café? 🎭"
            assert reply.outcome.WhichOneof("event") == "completed"
            assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {API_KEY}"
            messages = list_messages(alice, chat.id)
            assert [(m.role, m.content, m.status) for m in messages] == [
                (chat_session_pb2.ROLE_USER, "Sing me something.", COMPLETED),
                (chat_session_pb2.ROLE_ASSISTANT, text, COMPLETED),
            ]

            # Resuming by offset carries the token too.
            half = len("Hello, ".encode())
            watch = watch_chat(alice, chat.id, resume=(reply.stream_id, half), events=True)
            tail = ""
            for event in watch:
                if event.WhichOneof("event") == "delta":
                    tail += event.delta.text
                if event.WhichOneof("event") == "completed":
                    break
            watch.close()
            assert tail == "Alice! Café? 🎭"

            # Streaming calls without a token fail before anything is stored.
            try:
                list(send_message(server.channel, chat.id, "Let me in."))
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            else:
                raise AssertionError("a message without a token was accepted")
            assert len(list_messages(alice, chat.id)) == 2

            # connect() falls back to $ROLEPLAY_TOKEN.
            monkeypatch.setenv("ROLEPLAY_TOKEN", token)
            with connect(server.target) as from_env:
                assert user_pb2_grpc.UserServiceStub(from_env).GetCurrentUser(request, timeout=10).name == "alice"
        finally:
            alice.close()
            wrong.close()


# --- Swipes, continue and editing ------------------------------------------------

ROLE_USER = chat_session_pb2.ROLE_USER
ROLE_ASSISTANT = chat_session_pb2.ROLE_ASSISTANT


def test_swipes_regenerate_twice_then_select_the_first(server, upstream):
    chat = open_chat(server.channel)
    stub = message_pb2_grpc.MessageServiceStub(server.channel)

    upstream.chunks = ["First ", "answer."]
    first = send_message(server.channel, chat.id, "Sing me something.")
    assert "".join(first) == "First answer."
    assert first.started.kind == message_pb2.REPLY_KIND_SEND
    message_id = first.outcome.completed.message.id
    assert message_id == first.started.assistant_message_id

    alternatives = [("First answer.", first.stream_id)]
    for count, chunks in ((2, ["Second ", "answer, café."]), (3, ["Third ", "answer 🎭"])):
        upstream.chunks = chunks
        reply = regenerate(server.channel, chat.id)
        text = "".join(reply)
        assert text == "".join(chunks)
        assert reply.outcome.WhichOneof("event") == "completed"
        assert reply.offset == len(text.encode("utf-8"))
        started = reply.started
        assert started.kind == message_pb2.REPLY_KIND_REGENERATE
        assert started.assistant_message_id == message_id
        assert (started.alternative_index, started.alternative_count) == (count - 1, count)
        assert started.continues_from == 0
        stored = reply.outcome.completed.message
        assert (stored.id, stored.content, stored.alternative_index, stored.alternative_count) == (
            message_id,
            text,
            count - 1,
            count,
        )
        # Asked again from the user's message: no earlier alternative is in the prompt.
        assert upstream.requests[-1]["body"]["messages"][-1] == {"role": "user", "content": "Sing me something."}
        alternatives.append((text, reply.stream_id))

    # The new alternative is the selected one until another is selected.
    shown = list_messages(server.channel, chat.id)[1]
    assert (shown.id, shown.content, shown.alternative_index, shown.alternative_count) == (
        message_id,
        "Third answer 🎭",
        2,
        3,
    )

    selected = stub.SelectAlternative(
        message_pb2.SelectAlternativeRequest(message_id=message_id, index=0), timeout=RPC_TIMEOUT
    )
    assert (selected.id, selected.content, selected.alternative_index, selected.alternative_count) == (
        message_id,
        "First answer.",
        0,
        3,
    )

    listed = stub.ListAlternatives(message_pb2.ListAlternativesRequest(message_id=message_id), timeout=RPC_TIMEOUT)
    assert len(listed.alternatives) == 3
    assert [(a.content, a.stream_id) for a in listed.alternatives] == alternatives
    assert [a.alternative_index for a in listed.alternatives] == [0, 1, 2]
    assert all(a.status == COMPLETED for a in listed.alternatives)
    assert listed.selected_index == 0

    messages = list_messages(server.channel, chat.id)
    assert [(m.role, m.content, m.status, m.alternative_index, m.alternative_count) for m in messages] == [
        (ROLE_USER, "Sing me something.", COMPLETED, 0, 1),
        (ROLE_ASSISTANT, "First answer.", COMPLETED, 0, 3),
    ]

    # Out of range: refused, nothing changes.
    try:
        stub.SelectAlternative(
            message_pb2.SelectAlternativeRequest(message_id=message_id, index=3), timeout=RPC_TIMEOUT
        )
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        raise AssertionError("alternative 3 of 3 was selected")

    # The story goes on from the selected alternative.
    upstream.chunks = ["Fourth."]
    assert "".join(send_message(server.channel, chat.id, "And then?")) == "Fourth."
    sent = upstream.requests[-1]["body"]["messages"]
    assert sent[-2:] == [
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "And then?"},
    ]


def test_continue_appends_to_the_last_reply(server, upstream):
    chat = open_chat(server.channel)
    upstream.chunks = ["Once upon ", "a time"]
    first = send_message(server.channel, chat.id, "Tell me a story.")
    old = "".join(first)
    message_id = first.outcome.completed.message.id

    upstream.chunks = [", a bard ", "sang of café 🎭."]
    more = continue_reply(server.channel, chat.id)
    new = "".join(more)

    # The stream yields the new text; the completed message is the whole one.
    assert new == ", a bard sang of café 🎭."
    assert more.started.kind == message_pb2.REPLY_KIND_CONTINUE
    assert more.started.assistant_message_id == message_id
    assert more.started.continues_from == len(old.encode("utf-8"))
    assert more.outcome.WhichOneof("event") == "completed"
    assert more.outcome.completed.message.id == message_id
    assert more.outcome.completed.message.content == old + new
    assert more.offset == len((old + new).encode("utf-8"))
    assert more.reconnects == 0

    messages = list_messages(server.channel, chat.id)
    assert [(m.role, m.content, m.status) for m in messages] == [
        (ROLE_USER, "Tell me a story.", COMPLETED),
        (ROLE_ASSISTANT, "Once upon a time, a bard sang of café 🎭.", COMPLETED),
    ]
    # The same alternative grew: no new one.
    assert (messages[1].id, messages[1].alternative_index, messages[1].alternative_count) == (message_id, 0, 1)


def test_regenerate_survives_a_cut_connection(server, upstream, proxy):
    chat = open_chat(server.channel)
    upstream.chunks = ["A first try."]
    assert "".join(send_message(server.channel, chat.id, "Tell me a story.")) == "A first try."
    upstream.chunks = slow_reply_chunks(40)
    upstream.delay = 0.05
    expected = upstream.reply()
    total = len(expected.encode("utf-8"))

    channel = connect(proxy.address)
    try:
        reply = regenerate(channel, chat.id, backoff=FAST)
        received = bytearray()
        for piece in reply:
            received += piece.encode("utf-8")
            if proxy.cuts == 0 and len(received) >= total // 3:
                proxy.cut()
    finally:
        channel.close()

    assert bytes(received) == expected.encode("utf-8")
    assert proxy.cuts == 1
    assert reply.reconnects >= 1
    assert proxy.accepted >= 2
    assert (reply.started.alternative_index, reply.started.alternative_count) == (1, 2)
    assert reply.outcome.WhichOneof("event") == "completed"
    shown = list_messages(server.channel, chat.id)[1]
    assert (shown.content, shown.alternative_index, shown.alternative_count) == (expected, 1, 2)


def test_continue_reply_survives_a_cut_connection(server, upstream, proxy):
    chat = open_chat(server.channel)
    upstream.chunks = ["Prologue: ", "café 🎭. "]
    old = "".join(send_message(server.channel, chat.id, "Begin."))
    upstream.chunks = slow_reply_chunks(40)
    upstream.delay = 0.05
    expected = upstream.reply()
    total = len(expected.encode("utf-8"))

    channel = connect(proxy.address)
    try:
        reply = continue_reply(channel, chat.id, backoff=FAST)
        received = bytearray()
        for piece in reply:
            received += piece.encode("utf-8")
            if proxy.cuts == 0 and len(received) >= total // 3:
                proxy.cut()
            elif proxy.cuts == 1 and reply.reconnects == 1 and len(received) >= 2 * total // 3:
                proxy.cut()  # and once more, after resuming
    finally:
        channel.close()

    # Resumed by offsets into the whole message, each new byte exactly once.
    assert bytes(received) == expected.encode("utf-8")
    assert proxy.cuts == 2
    assert reply.reconnects >= 2
    assert reply.started.continues_from == len(old.encode("utf-8"))
    assert reply.offset == len((old + expected).encode("utf-8"))
    assert reply.outcome.WhichOneof("event") == "completed"
    assert reply.outcome.completed.message.content == old + expected
    assert list_messages(server.channel, chat.id)[1].content == old + expected


def test_edit_fork_rewind_and_delete(server, upstream):
    chat = open_chat(server.channel)
    messages_stub = message_pb2_grpc.MessageServiceStub(server.channel)
    chats_stub = chat_session_pb2_grpc.ChatSessionServiceStub(server.channel)
    for content, answer in (("First.", "One."), ("Second.", "Two.")):
        upstream.chunks = [answer]
        assert "".join(send_message(server.channel, chat.id, content)) == answer
    user1, reply1, user2, reply2 = list_messages(server.channel, chat.id)

    edited = messages_stub.EditMessage(
        message_pb2.EditMessageRequest(message_id=user1.id, content="First, edited."), timeout=RPC_TIMEOUT
    )
    assert (edited.id, edited.role, edited.content) == (user1.id, ROLE_USER, "First, edited.")
    assert edited.HasField("edited_at")
    try:
        messages_stub.EditMessage(
            message_pb2.EditMessageRequest(message_id=user1.id, content="  "), timeout=RPC_TIMEOUT
        )
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    else:
        raise AssertionError("an empty edit was accepted")

    fork = chats_stub.ForkChatSession(
        chat_session_pb2.ForkChatSessionRequest(chat_session_id=chat.id, message_id=reply1.id), timeout=RPC_TIMEOUT
    )
    assert fork.id != chat.id
    assert (fork.character_id, fork.user_profile_id) == (chat.character_id, chat.user_profile_id)
    assert fork.title == f"{chat.title} (fork)"
    assert [(m.role, m.content) for m in list_messages(server.channel, fork.id)] == [
        (ROLE_USER, "First, edited."),
        (ROLE_ASSISTANT, "One."),
    ]

    rewound = messages_stub.RewindChatSession(
        message_pb2.RewindChatSessionRequest(chat_session_id=chat.id, message_id=user2.id), timeout=RPC_TIMEOUT
    )
    assert list(rewound.deleted_message_ids) == [reply2.id]
    assert [m.id for m in list_messages(server.channel, chat.id)] == [user1.id, reply1.id, user2.id]

    # The chat ends with a user message: nothing to continue, but
    # RegenerateReply answers it.
    try:
        list(continue_reply(server.channel, chat.id))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    else:
        raise AssertionError("a user message was continued")
    upstream.chunks = ["Two, again."]
    answer = regenerate(server.channel, chat.id)
    assert "".join(answer) == "Two, again."
    assert answer.started.user_message_id == user2.id
    assert (answer.started.alternative_index, answer.started.alternative_count) == (0, 1)

    messages_stub.DeleteMessage(message_pb2.DeleteMessageRequest(message_id=user1.id), timeout=RPC_TIMEOUT)
    assert [m.content for m in list_messages(server.channel, chat.id)] == ["One.", "Second.", "Two, again."]
    # The fork is a copy: unchanged.
    assert [m.content for m in list_messages(server.channel, fork.id)] == ["First, edited.", "One."]


def test_watch_chat_sees_chat_changed(server, upstream):
    chat = open_chat(server.channel)
    stub = message_pb2_grpc.MessageServiceStub(server.channel)
    upstream.chunks = ["One."]
    first = send_message(server.channel, chat.id, "Hi.")
    list(first)
    upstream.chunks = ["Two."]
    list(regenerate(server.channel, chat.id))
    message_id = first.outcome.completed.message.id

    channel = connect(server.target)
    watch = watch_chat(channel, chat.id, events=True, backoff=FAST)
    changes = []
    failure = []

    def consume():
        try:
            for event in watch:
                if event.WhichOneof("event") == "chat_changed":
                    changes.append(event.chat_changed)
                    return
        except Exception as err:  # noqa: BLE001 - reported by the main thread
            failure.append(err)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    try:

        def watchers() -> int:
            status = stub.GetStreamStatus(message_pb2.GetStreamStatusRequest(chat_session_id=chat.id), timeout=5)
            return status.watchers

        wait_until(lambda: watchers() >= 1, 10, "the watcher to subscribe")
        stub.SelectAlternative(
            message_pb2.SelectAlternativeRequest(message_id=message_id, index=0), timeout=RPC_TIMEOUT
        )
        wait_until(lambda: bool(changes or failure), 10, "ChatChanged")
        assert not failure, failure
    finally:
        # Closing the channel ends the watch's call, so the consumer stops
        # even when the test failed half-way.
        channel.close()
        consumer.join(10)
        watch.close()
    assert changes[0].chat_session_id == chat.id
    assert changes[0].kind == message_pb2.CHAT_CHANGE_KIND_SELECTED
    assert list(changes[0].message_ids) == [message_id]


def test_example_swipes_then_selects(server, upstream):
    upstream.chunks = ["Same ", "song, ", "café 🎭"]
    chat = open_chat(server.channel)
    example = Path(__file__).resolve().parents[1] / "examples" / "chat.py"
    done = subprocess.run(
        [
            sys.executable,
            str(example),
            "--target",
            server.target,
            "--chat-id",
            chat.id,
            "--swipes",
            "2",
            "--select",
            "0",
            "Sing.",
        ],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=30,
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr
    assert done.stdout.decode("utf-8") == "Same song, café 🎭\n" * 3
    assert "[alternative 2 of 2]" in stderr and "[alternative 3 of 3]" in stderr
    assert "[kept alternative 1 of 3" in stderr
    messages = list_messages(server.channel, chat.id)
    assert (messages[1].alternative_index, messages[1].alternative_count) == (0, 3)
