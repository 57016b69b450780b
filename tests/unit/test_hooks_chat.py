"""The chat hooks choose who gets a line; a hook that fails sends the line nowhere (it may be the
one that keeps a booth private)."""

from __future__ import annotations

from typing import Any

from server.hooks import Hooks


def test_a_hook_narrows_the_targets_and_keeps_the_line_from_other_processes() -> None:
    hooks = Hooks()
    a, b, c = object(), object(), object()
    hooks.on_chat(lambda sender, targets: ([t for t in targets if t is not c], False))
    assert hooks.route_chat(a, [a, b, c]) == ([a, b], False)  # type: ignore[arg-type]


def test_no_hook_or_a_hook_that_leaves_it_sends_the_line_as_it_was() -> None:
    hooks = Hooks()
    a, b = object(), object()
    assert hooks.route_chat(a, [a, b]) == ([a, b], True)  # type: ignore[arg-type]
    hooks.on_chat(lambda sender, targets: None)
    assert hooks.route_chat(None, [a, b]) == ([a, b], True)  # type: ignore[arg-type]


def test_a_failing_hook_sends_the_line_to_no_one_and_relays_nothing() -> None:
    hooks = Hooks()
    a, b = object(), object()

    def broken(sender: Any, targets: list[Any]) -> None:
        raise KeyError("a bug in a feature")

    hooks.on_chat(broken)
    hooks.on_chat(lambda sender, targets: (targets + [b], True))  # never reached
    assert hooks.route_chat(a, [a]) == ([], False)  # type: ignore[arg-type]
