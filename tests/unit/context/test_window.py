from __future__ import annotations

from pathlib import Path

import pytest

from tierserve.context.tokens import HFTokenCounter, WordTokenCounter
from tierserve.context.window import fit_window
from tierserve.errors import ContextLengthExceeded

MODELS = Path("~/.cache/tierserve/models").expanduser()


def m(role, content):
    return {"role": role, "content": content}


def history(n: int, words: int = 10) -> list[dict]:
    return [m("user" if i % 2 == 0 else "assistant", " ".join([f"w{i}"] * words)) for i in range(n)]


def test_everything_fits_nothing_dropped():
    count = WordTokenCounter().count
    w = fit_window([m("system", "be brief")], history(4), [m("user", "next")], count, 1000, 100)
    assert w.dropped_turns == 0
    assert [x["role"] for x in w.messages] == ["system", "user", "assistant", "user", "assistant", "user"]


def test_oldest_turns_dropped_whole_system_kept():
    count = WordTokenCounter().count  # each history message = 11 tokens
    system, new = [m("system", "sys")], [m("user", "question now")]
    w = fit_window(system, history(10), new, count, max_model_len=60, reserve_tokens=10)
    assert w.messages[0] == system[0] and w.messages[-1] == new[0]
    kept = w.messages[1:-1]
    assert kept == history(10)[w.dropped_turns:]
    assert kept[0]["role"] == "user", "the window never starts with an orphan assistant turn"
    assert w.prompt_tokens + 10 <= 60
    assert w.prompt_tokens == sum(count(x) for x in w.messages)


def test_reserve_counts_against_the_budget():
    count = WordTokenCounter().count
    small = fit_window([], history(10), [m("user", "q")], count, 200, reserve_tokens=150)
    big = fit_window([], history(10), [m("user", "q")], count, 200, reserve_tokens=10)
    assert small.dropped_turns > big.dropped_turns


def test_new_messages_alone_too_long_is_context_error():
    count = WordTokenCounter().count
    with pytest.raises(ContextLengthExceeded):
        fit_window([], history(2), [m("user", "x " * 300)], count, 100, 10)


@pytest.fixture(scope="module")
def smol():
    return HFTokenCounter(str(MODELS / "smollm2-135m-instruct"))


@pytest.fixture(scope="module")
def qwen():
    return HFTokenCounter(str(MODELS / "qwen2.5-coder-0.5b-instruct"))


def _exact(counter, messages):
    tok = counter._tok
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tok.encode(text, add_special_tokens=False))


@pytest.mark.parametrize("which", ["smol", "qwen"])
def test_real_tokenizer_counts_match_the_chat_template(which, request):
    counter = request.getfixturevalue(which)
    convo = [m("system", "You are terse."), m("user", "什么是光合作用？请简单回答。"),
             m("assistant", "植物利用光能把二氧化碳和水变成葡萄糖和氧气。"),
             m("user", "And in English? Ünïcödé ✓ emoji 🚀")]
    estimate = sum(counter.count(x) for x in convo) + counter.overhead(True)
    assert abs(estimate - _exact(counter, convo)) <= 2
    convo = convo[1:]
    estimate = sum(counter.count(x) for x in convo) + counter.overhead(False)
    assert abs(estimate - _exact(counter, convo)) <= 2


def test_tokenizers_differ_per_tier(smol, qwen):
    text = {"role": "user", "content": "请证明根号2是无理数，并逐步推导。" * 5}
    assert smol.count(text) != qwen.count(text)


def test_chinese_history_trimmed_by_the_chosen_model_tokenizer(smol, qwen):
    hist = [m("user" if i % 2 == 0 else "assistant", "这是一个关于机器学习的长句子。" * 8) for i in range(20)]
    new = [m("user", "总结一下。")]
    ws = fit_window([], hist, new, smol.count, 600, 100, smol.overhead(False))
    wq = fit_window([], hist, new, qwen.count, 600, 100, qwen.overhead(False))
    assert ws.dropped_turns != wq.dropped_turns  # SmolLM2 spends more tokens on Chinese
    for counter, w in ((smol, ws), (qwen, wq)):
        assert _exact(counter, w.messages) + 100 <= 600
        assert all(x in hist + new for x in w.messages)  # whole messages only
