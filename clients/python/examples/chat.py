#!/usr/bin/env python3
"""Send a message to a roleplay-server chat and print the reply as it streams.

    python examples/chat.py --target localhost:50051 --chat-id <chat id> "Sing me something."
    python examples/chat.py --chat-id <chat id> --swipes 2 --select 0 "Sing me something."

If the connection to the server drops mid-reply, the helper resumes the reply
where it stopped (each byte is printed exactly once) and a note goes to stderr.
Once the server has users, give a token with --token or $ROLEPLAY_TOKEN.

Swipes: with --swipes N the reply is regenerated N times (RegenerateReply);
each new alternative is printed on its own line and becomes the selected one.
--select INDEX then picks the alternative the story continues from
(SelectAlternative; 0 is the first reply). Notes go to stderr, the text alone
to stdout.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from roleplay_client import (
    ReconnectFailed,
    ReplyStream,
    connect,
    message_pb2,
    message_pb2_grpc,
    regenerate,
    send_message,
)


def follow(reply: ReplyStream) -> bool:
    """Prints the reply as it streams; True when it completed."""
    reconnects = 0
    try:
        for piece in reply:
            if reply.reconnects != reconnects:
                reconnects = reply.reconnects
                resumed_at = reply.offset - len(piece.encode("utf-8"))
                print(f"\n[reconnected, resumed at byte {resumed_at}]", file=sys.stderr, flush=True)
            print(piece, end="", flush=True)
        print()
    finally:
        reply.close()

    outcome = reply.outcome
    kind = outcome.WhichOneof("event") if outcome else None
    if kind == "failed":
        print(f"error: the reply failed: {outcome.failed.message}", file=sys.stderr)
        return False
    if kind == "cancelled":
        print("the reply was cancelled", file=sys.stderr)
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="localhost:50051", help="server host:port (default: %(default)s)")
    parser.add_argument("--chat-id", required=True, help="the chat session to send to")
    parser.add_argument(
        "--token",
        help="API token, sent as `authorization: Bearer` (default: $ROLEPLAY_TOKEN, which ps does not show)",
    )
    parser.add_argument("--swipes", type=int, default=0, metavar="N", help="regenerate the reply N times")
    parser.add_argument("--select", type=int, metavar="INDEX", help="then keep alternative INDEX (0: the first)")
    parser.add_argument("message", help="what to say")
    args = parser.parse_args()
    if args.select is not None and args.swipes < 1:
        parser.error("--select needs --swipes")

    channel = connect(args.target, token=args.token)
    try:
        if not follow(send_message(channel, args.chat_id, args.message)):
            return 1
        for _ in range(args.swipes):
            reply = regenerate(channel, args.chat_id)
            ok = follow(reply)
            started = reply.started
            print(
                f"[alternative {started.alternative_index + 1} of {started.alternative_count}]",
                file=sys.stderr,
                flush=True,
            )
            if not ok:
                return 1
            message_id = started.assistant_message_id
        if args.select is not None:
            stub = message_pb2_grpc.MessageServiceStub(channel)
            kept = stub.SelectAlternative(
                message_pb2.SelectAlternativeRequest(message_id=message_id, index=args.select), timeout=10
            )
            print(
                f"[kept alternative {kept.alternative_index + 1} of {kept.alternative_count}: {kept.content}]",
                file=sys.stderr,
            )
    except grpc.RpcError as err:
        print(f"\nerror: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    except ReconnectFailed as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
