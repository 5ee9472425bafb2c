"""A session-era server's question, put to a stateless client the only way its era allows: as an
``InputRequiredResult``, answered by the client retrying the same request with ``inputResponses``
and the ``requestState`` we gave it (MCP 2026-07-28, multi-round-trip requests).

The upstream call does not end when its first HTTP request does: a ``PendingCall`` runs it in a
task of the front's own, and each HTTP request that carries it on (the first one, then every retry)
reads what it produces until the answer, or until the next question, which ends that HTTP request
with another ``InputRequiredResult``. A call whose client does not come back within
``PENDING_SECONDS`` is cancelled upstream.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["ASKING_METHODS", "PENDING_SECONDS", "PendingCall", "input_required_result", "question_allowed"]

PENDING_SECONDS = 300.0
"""How long a call waits for its client to come back with the answers it asked for."""

ASKING_METHODS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
"""The questions the era can carry as input requests, and the client capability each needs."""

RESUMABLE_METHODS = frozenset({"tools/call", "prompts/get", "resources/read"})
"""Requests whose result may be an ``InputRequiredResult`` (the era's multi-round-trip requests)."""


def question_allowed(question: Mapping[str, Any], capabilities: Mapping[str, Any]) -> bool:
    """Whether the client declared what this question needs."""
    needed = ASKING_METHODS.get(str(question.get("method")))
    return needed is not None and needed in capabilities


def input_required_result(questions: Mapping[str, Mapping[str, Any]], state: str) -> dict[str, Any]:
    """The ``InputRequiredResult`` asking ``questions`` (keyed as the client must answer them)."""
    requests = {}
    for key, question in questions.items():
        request: dict[str, Any] = {"method": question["method"]}
        if question.get("params") is not None:
            request["params"] = question["params"]
        requests[key] = request
    return {"resultType": "input_required", "inputRequests": requests, "requestState": state}


@dataclass
class _Question:
    message: dict[str, Any]
    answered: anyio.Event = field(default_factory=anyio.Event)
    answer: dict[str, Any] | None = None


Item = tuple[str, Any]  # ("message", notification) | ("question", key) | ("answer", response)


class PendingCall:
    """One upstream call that may outlive the HTTP request that started it."""

    def __init__(self, method: str, principal: str | None) -> None:
        self.method = method
        self.principal = principal
        self.scope = anyio.CancelScope()
        self.deadline = float("inf")
        self._send: MemoryObjectSendStream[Item]
        self._receive: MemoryObjectReceiveStream[Item]
        self._send, self._receive = anyio.create_memory_object_stream[Item](256)
        self._questions: dict[str, _Question] = {}
        self._numbers = itertools.count(1)

    async def run(self, call: Callable[..., Awaitable[dict[str, Any]]]) -> None:
        """Run the upstream call (``link.call`` with this object's callbacks) to its answer."""
        with self.scope:
            try:
                answer = await call(on_message=self._message, on_request=self._ask)
            except Exception as exc:  # the link closed: the reader learns it as an answer
                answer = {"error": {"code": -32603, "message": f"the upstream server went away: {exc}"}}
            await self._send.send(("answer", answer))

    async def _message(self, message: dict[str, Any]) -> None:
        await self._send.send(("message", message))

    async def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        key = f"q{next(self._numbers)}"
        question = self._questions[key] = _Question(message)
        await self._send.send(("question", key))
        await question.answered.wait()
        assert question.answer is not None
        return {"jsonrpc": "2.0", "id": message.get("id"), **question.answer}

    def question(self, key: str) -> dict[str, Any]:
        return self._questions[key].message

    def refuse(self, key: str, error: dict[str, Any]) -> None:
        self._settle(key, {"error": error})

    def answer(self, responses: Mapping[str, Any]) -> list[str]:
        """The client's answers, by key; the keys it answered that were not asked."""
        unknown = []
        for key, response in responses.items():
            if key in self._questions and self._questions[key].answer is None:
                self._settle(key, {"result": response})
            else:
                unknown.append(key)
        return unknown

    def _settle(self, key: str, answer: dict[str, Any]) -> None:
        question = self._questions[key]
        question.answer = answer
        question.answered.set()

    @property
    def unanswered(self) -> list[str]:
        return [key for key, question in self._questions.items() if question.answer is None]

    async def next(self) -> Item:
        return await self._receive.receive()

    def ready(self) -> list[Item]:
        """What is already waiting, without waiting."""
        items = []
        while True:
            try:
                items.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return items

    def cancel(self) -> None:
        self.scope.cancel()
