"""Fixtures: a fake OpenAI-compatible upstream, the real roleplay-server binary
on free loopback ports, and a TCP proxy whose connections a test can cut.

The server binary is $ROLEPLAY_SERVER_BIN, else <repo>/target/debug/roleplay-server
(built by `cargo build` / `cargo test`). A missing binary fails the tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

from roleplay_client import (
    character_pb2,
    character_pb2_grpc,
    chat_session_pb2,
    chat_session_pb2_grpc,
    settings_pb2,
    settings_pb2_grpc,
    user_profile_pb2,
    user_profile_pb2_grpc,
)

# connect() sends $ROLEPLAY_TOKEN when given no token; the tests say which
# token each call carries themselves.
os.environ.pop("ROLEPLAY_TOKEN", None)

REPO = Path(__file__).resolve().parents[3]
API_KEY = "sk-test-0123456789abcdef"
RPC_TIMEOUT = 10  # seconds, for every unary call


def server_binary() -> Path:
    path = Path(os.environ.get("ROLEPLAY_SERVER_BIN") or REPO / "target" / "debug" / "roleplay-server")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"roleplay-server binary not found at {path}: build it with `cargo build` "
            "or point ROLEPLAY_SERVER_BIN at it",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- Fake upstream -------------------------------------------------------------


class FakeUpstream:
    """An OpenAI-compatible `POST /chat/completions` that streams `chunks` as
    SSE, sleeping `delay` seconds after each, then a usage chunk and [DONE]."""

    def __init__(self):
        self.chunks: list[str] = ["Hello", " there", "!"]
        self.delay = 0.0
        self.requests: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/chat/completions":
                    self.send_error(404)
                    return
                upstream.requests.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(body or b"{}")}
                )
                chunks, delay = list(upstream.chunks), upstream.delay
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for chunk in chunks:
                        self._event({"choices": [{"delta": {"content": chunk}, "finish_reason": None}]})
                        if delay:
                            time.sleep(delay)
                    self._event({"choices": [{"delta": {}, "finish_reason": "stop"}]})
                    self._event(
                        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
                    )
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server dropped the request (cancelled)

            def _event(self, payload):
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-upstream", daemon=True)
        self._thread.start()

    def reply(self) -> str:
        return "".join(self.chunks)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


# --- TCP proxy -------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every open
    connection while new ones are still accepted."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.cuts = 0
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # listener closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self.accepted += 1
                self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="proxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._kill(s)

    def _kill(self, s: socket.socket):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
        with self._lock:
            if s in self._open:
                self._open.remove(s)

    def cut(self):
        """Drops every connection open now (both sides)."""
        with self._lock:
            victims, self._open = self._open, []
            self.cuts += 1
        for s in victims:
            self._kill(s)

    def close(self):
        with self._lock:
            self._closed = True
        self.listener.close()
        self.cut()


# --- The server ------------------------------------------------------------------


@dataclass
class Server:
    target: str
    port: int
    # A plain channel: no token (single-user mode only).
    channel: grpc.Channel
    upstream: FakeUpstream
    process: subprocess.Popen
    log: Path
    binary: Path
    # The server's environment and working directory, for its CLI (run_cli).
    env: dict[str, str]
    work: Path


@pytest.fixture(scope="session")
def upstream():
    fake = FakeUpstream()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def server(upstream, tmp_path_factory):
    with start_server(upstream, tmp_path_factory.mktemp("roleplay-server")) as s:
        yield s


@contextmanager
def start_server(upstream: FakeUpstream, work: Path):
    """roleplay-server with its own database and master key in ``work``,
    stopped at the end."""
    binary = server_binary()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLEPLAY_")}
    env.update(
        ROLEPLAY_LISTEN=f"127.0.0.1:{port}",
        DATABASE_URL=str(work / "db.sqlite"),
        ROLEPLAY_MASTER_KEY_FILE=str(work / "master.key"),
        OPENROUTER_BASE_URL=upstream.base_url,
        RUST_LOG="warn",
    )
    log = work / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "serve"], env=env, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target)
    try:
        _wait_ready(process, channel, log)
        yield Server(target, port, channel, upstream, process, log, binary, env, work)
    finally:
        channel.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_ready(process: subprocess.Popen, channel: grpc.Channel, log: Path, timeout: float = 30.0):
    settings = settings_pb2_grpc.SettingsServiceStub(channel)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"roleplay-server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            settings.GetSettings(settings_pb2.GetSettingsRequest(), timeout=1, wait_for_ready=True)
            return
        except grpc.RpcError as err:
            last = err
            time.sleep(0.05)
    pytest.fail(f"roleplay-server not ready after {timeout}s ({last}):\n{log.read_text(errors='replace')}")


def run_cli(server: Server, *args: str) -> subprocess.CompletedProcess:
    """Runs ``<server-bin> args...`` with the server's environment (its
    database and master key) and returns the finished process (text output)."""
    return subprocess.run(
        [str(server.binary), *args],
        env=server.env,
        cwd=server.work,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def proxy(server):
    p = TcpProxy(server.port)
    yield p
    p.close()


@pytest.fixture(autouse=True)
def _reset_upstream(upstream):
    upstream.chunks = ["Hello", " there", "!"]
    upstream.delay = 0.0
    yield


def open_chat(channel: grpc.Channel, character: str = "Aria", profile: str = "Sam") -> chat_session_pb2.ChatSession:
    """Sets the API key and creates a character, a user profile and a chat."""
    settings_pb2_grpc.SettingsServiceStub(channel).SetProviderApiKey(
        settings_pb2.SetProviderApiKeyRequest(api_key=API_KEY), timeout=RPC_TIMEOUT
    )
    char = character_pb2_grpc.CharacterServiceStub(channel).CreateCharacter(
        character_pb2.CreateCharacterRequest(name=character, description="A bard who teases {{user}}."),
        timeout=RPC_TIMEOUT,
    )
    user = user_profile_pb2_grpc.UserProfileServiceStub(channel).CreateUserProfile(
        user_profile_pb2.CreateUserProfileRequest(name=profile), timeout=RPC_TIMEOUT
    )
    return chat_session_pb2_grpc.ChatSessionServiceStub(channel).CreateChatSession(
        chat_session_pb2.CreateChatSessionRequest(character_id=char.id, user_profile_id=user.id),
        timeout=RPC_TIMEOUT,
    )


def list_messages(channel: grpc.Channel, chat_id: str):
    return (
        chat_session_pb2_grpc.ChatSessionServiceStub(channel)
        .ListMessages(chat_session_pb2.ListMessagesRequest(chat_session_id=chat_id, page_size=100), timeout=RPC_TIMEOUT)
        .messages
    )


def slow_reply_chunks(count: int = 40) -> list[str]:
    """A reply with multi-byte UTF-8 in every chunk (2- and 4-byte characters)."""
    return [f"{i:02d} café 🎭 naïve — " for i in range(count)]
