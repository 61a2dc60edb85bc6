"""Real OpenAI-compatible servers for the judge tests, all on loopback, nothing from the hub.

- `transformers serve` (a real chat-completions server) over tiny model folders built here:
  *scripted* judges whose weights are set by hand so that, whatever the prompt, they answer one
  fixed verdict token and stop (`{"equivalent": true}`, `{"score": 7}`, ...), and a *random* judge
  (random weights) that babbles. One server process loads whichever folder a request names.
- `counting_proxy`: a real HTTP proxy in front of it that counts requests and the most in flight.
- `black_hole`: a TCP server that accepts connections and never answers (a hung judge).

How a scripted judge works: a Llama whose attention and MLP outputs are zeroed, so the last
hidden state is the embedding of the last token. The chat template ends the prompt with
`<|assistant|>`; that token's embedding points the LM head at the verdict token, the verdict
token's at `</s>`. Greedy decoding (temperature 0) then yields exactly the verdict.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.servers import free_port, running_server

SERVER_START_TIMEOUT_S = 240.0
# The prompt ends on `<|assistant|>` (no newline), so that token decides the first reply token.
JUDGE_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SCRIPTS = {
    "yes": '{"equivalent": true}',
    "no": '{"equivalent": false}',
    "seven": '{"score": 7}',
    "prose": "I think they are equivalent.",
}


def serve_command() -> list[str] | None:
    """`transformers serve` from this environment, or None when it cannot run here."""
    from transformers.utils.import_utils import is_serve_available

    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    return [exe, "serve"] if exe and is_serve_available() else None


def build_judges(root: Path) -> dict[str, Path]:
    """One folder per scripted verdict, plus `random` (random weights); returns name -> folder."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from rewardstack.services.model_server.tiny import byte_tokenizer

    folders = {}
    for name in [*SCRIPTS, "random"]:
        tokenizer = byte_tokenizer(JUDGE_TEMPLATE)
        tokenizer.add_tokens(list(SCRIPTS.values()))
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32_768,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
        )  # fmt: skip
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).eval()
        if name in SCRIPTS:
            _script(model, tokenizer, SCRIPTS[name])
        folder = root / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        GenerationConfig(do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(folder)
        folders[name] = folder
    return folders


def _script(model, tokenizer, reply: str) -> None:  # noqa: ANN001 - a Llama and its tokenizer
    """Make `model` answer `reply` (one token) and then `</s>` after any prompt."""
    import torch

    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed, head = model.model.embed_tokens.weight, model.lm_head.weight
        embed.zero_()
        head.zero_()
        assistant = tokenizer.convert_tokens_to_ids("<|assistant|>")
        verdict = tokenizer.convert_tokens_to_ids(reply)
        embed[assistant, 0] = 1.0
        embed[verdict, 1] = 1.0
        head[verdict, 0] = 10.0
        head[tokenizer.eos_token_id, 1] = 10.0


@contextmanager
def transformers_server(log_path: Path) -> Iterator[str]:
    """`transformers serve` on a free loopback port; yields its base URL; stops it on exit."""
    command = serve_command()
    assert command is not None
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {process.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"transformers serve did not start within {SERVER_START_TIMEOUT_S} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Counter:
    """What the proxy saw: requests forwarded, and the most in flight at once."""

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[bytes] = []
        self.authorizations: set[str | None] = set()
        self._lock = threading.Lock()

    def enter(self, body: bytes, authorization: str | None) -> None:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)
            self.authorizations.add(authorization)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset(self) -> None:
        with self._lock:
            self.requests = self.max_in_flight = 0
            self.bodies.clear()
            self.authorizations.clear()


@contextmanager
def counting_proxy(upstream: str, *, hold_s: float = 0.0, refuse_response_format: bool = False) -> Iterator[tuple[str, Counter]]:
    """An HTTP proxy to `upstream` that counts and records what passes; `hold_s` keeps each
    request open a little longer, so concurrency shows even when the upstream answers at once.
    `refuse_response_format` answers 400 to a request with `response_format`, as a server
    without structured output does (transformers serve ignores the field instead)."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    counter = Counter()
    client = httpx.AsyncClient(base_url=upstream, timeout=120)

    async def forward(request: Request) -> Response:
        body = await request.body()
        counter.enter(body, request.headers.get("authorization"))
        try:
            if refuse_response_format and b'"response_format"' in body:
                return Response('{"error": "response_format is not supported"}', 400, media_type="application/json")
            upstream_response = await client.post(request.url.path, content=body, headers={"content-type": "application/json"})
            await asyncio.sleep(hold_s)
        finally:
            counter.leave()
        return Response(upstream_response.content, upstream_response.status_code, media_type="application/json")

    app = Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"])])
    with running_server(app) as url:
        yield url, counter


@contextmanager
def black_hole() -> Iterator[str]:
    """A server that accepts connections and reads requests but never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"
