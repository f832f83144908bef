#!/usr/bin/env python3
"""Send a message to a roleplay-server chat and print the reply as it streams.

    python examples/chat.py --target localhost:50051 --chat-id <chat id> "Sing me something."

If the connection to the server drops mid-reply, the helper resumes the reply
where it stopped (each byte is printed exactly once) and a note goes to stderr.
Once the server has users, give a token with --token or $ROLEPLAY_TOKEN.
"""

from __future__ import annotations

import argparse
import sys

import grpc

from roleplay_client import ReconnectFailed, connect, send_message


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="localhost:50051", help="server host:port (default: %(default)s)")
    parser.add_argument("--chat-id", required=True, help="the chat session to send to")
    parser.add_argument(
        "--token",
        help="API token, sent as `authorization: Bearer` (default: $ROLEPLAY_TOKEN, which ps does not show)",
    )
    parser.add_argument("message", help="what to say")
    args = parser.parse_args()

    channel = connect(args.target, token=args.token)
    reply = send_message(channel, args.chat_id, args.message)
    reconnects = 0
    try:
        for piece in reply:
            if reply.reconnects != reconnects:
                reconnects = reply.reconnects
                resumed_at = reply.offset - len(piece.encode("utf-8"))
                print(f"\n[reconnected, resumed at byte {resumed_at}]", file=sys.stderr, flush=True)
            print(piece, end="", flush=True)
        print()
    except grpc.RpcError as err:
        print(f"\nerror: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    except ReconnectFailed as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    finally:
        reply.close()
        channel.close()

    outcome = reply.outcome
    kind = outcome.WhichOneof("event") if outcome else None
    if kind == "failed":
        print(f"error: the reply failed: {outcome.failed.message}", file=sys.stderr)
        return 1
    if kind == "cancelled":
        print("the reply was cancelled", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
