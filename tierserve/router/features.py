"""Cheap text features of a conversation, English and Chinese (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|\bfunction\s*\w*\(|#include|\bimport \w+|;\s*$|=>|\{\s*$",
    re.MULTILINE,
)
_MATH = re.compile(
    r"\d+\s*[-+*/^=]\s*\d+|\\frac|\\sum|\\int|\bintegral\b|\bderivative\b|\bequation\b|"
    r"\bprobability\b|\bmatrix\b|\bprime\b|方程|概率|积分|导数|矩阵|质数",
    re.IGNORECASE,
)
_HARD = re.compile(
    r"\bprove\b|\bproof\b|\bstep[- ]by[- ]step\b|\bderive\b|\boptimi[sz]e\b|\bcomplexity\b|"
    r"\balgorithm\b|\bdesign (?:a|an|the)\b|\barchitecture\b|\bdistributed\b|\bconcurren|"
    r"\brace condition\b|\bdeadlock\b|\btrade-?offs?\b|\bformal(?:ly)?\b|\brigorous|"
    r"\bmulti-step\b|\bwhy does\b.*\bfail|证明|推导|算法|复杂度|系统设计|架构|分布式|并发|死锁|逐步",
    re.IGNORECASE,
)
_ORDINARY = re.compile(
    r"\bexplain\b|\bsummari[sz]e\b|\bwrite\b|\bdraft\b|\btranslate\b|\bcompare\b|\bdescribe\b|"
    r"\brewrite\b|\bfunction\b|\bscript\b|\bemail\b|\bessay\b|\blist\b|\bhow (?:do|can|to)\b|"
    r"解释|总结|写|翻译|比较|描述|改写|脚本|函数",
    re.IGNORECASE,
)
_SIMPLE = re.compile(
    r"^(?:what|who|when|where|which|is|are|does|do|how many|how much|define|name)\b|"
    r"^(?:hi|hello|hey|thanks|thank you)\b|什么是|是谁|哪里|什么时候|多少|你好|谢谢",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Features:
    chars: int
    words: int
    cjk_chars: int
    user_turns: int
    assistant_turns: int
    has_code: bool
    math_hits: int
    hard_hits: int
    ordinary_hits: int
    simple_opening: bool
    questions: int

    @property
    def approx_tokens(self) -> int:
        return self.words + self.cjk_chars


def extract(messages: list[dict]) -> Features:
    """Features of the last user message, plus the shape of the conversation."""
    users = [m for m in messages if m["role"] == "user"]
    last = (users[-1]["content"] if users else messages[-1]["content"]).strip()
    return Features(
        chars=len(last),
        words=len(_WORD.findall(last)),
        cjk_chars=len(_CJK.findall(last)),
        user_turns=len(users),
        assistant_turns=sum(1 for m in messages if m["role"] == "assistant"),
        has_code=bool(_CODE.search(last)),
        math_hits=len(_MATH.findall(last)),
        hard_hits=len(_HARD.findall(last)),
        ordinary_hits=len(_ORDINARY.findall(last)),
        simple_opening=bool(_SIMPLE.search(last)),
        questions=last.count("?") + last.count("？"),
    )
