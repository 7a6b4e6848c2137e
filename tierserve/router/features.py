"""Cheap text features of a conversation, English and Chinese (pure, microseconds).

The last user turn decides how hard the request is; the rest of the conversation only says
whether there is a dialogue to follow (history) and whether it was about hard material.
Cue families are regular expressions over both languages; each counts its matches.
"""

from __future__ import annotations

import math
import re
from dataclasses import astuple, dataclass, fields

_CJK = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_SENTENCE_END = re.compile(r"(?<=[.?!。？！])\s*")
_CLAUSE = re.compile(r"[:：，]\s*|,\s+(?=(?:what|who|when|where|which|how|is|are|does|do)\b)", re.I)


def _cues(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns), re.IGNORECASE | re.MULTILINE)


_CODE = _cues(
    r"```", r"\bdef \w+\(", r"\bclass \w+[:(]", r"\bfunction\s*\w*\(", r"#include",
    r"\bimport \w+", r";\s*$", r"=>", r"\{\s*$", r"\w+\[\w*\]", r"\b\w+\(\w*\)\s*$",
)
_MATH_EXPR = _cues(
    r"\d\s*[-+*/^=<>]\s*[\d\w(]", r"\w\^\d", r"\\frac|\\sum|\\int|∫|√|Σ|Ω|Θ", r"\b[fg]\(x\)",
    r"\d+!", r"\bsqrt\(", r"\bx\^?\d?\s*[-+=]",
)
_PROOF_MATH = _cues(
    r"\bprove\b", r"\bproof\b", r"\bderive\b", r"\bderivation\b", r"\btheorem\b",
    r"\binduction\b", r"\birrational\b", r"\bintegral\b", r"\beigen\w*", r"\bprobability\b",
    r"\bexpected (?:number|value)\b", r"\bvariance\b", r"\brecurrence\b", r"\bdiverges?\b",
    r"\binclusion-exclusion\b", r"\bgenerating functions?\b", r"\bbayes\b", r"\bmarkov\b",
    r"\bfind all\b", r"\bhow many ways\b", r"\bcounterexample\b", r"\bmaximi[sz]e\b",
    r"\bminimi[sz]e\b", r"\bdivisible\b", r"\bsolutions? of\b", r"\bsolve\b", r"\bmatrix\b",
    r"\buncountable\b", r"\bsubgroups?\b", r"\bconverge", r"\bepsilon\b",
    r"证明", r"推导", r"归纳", r"无理数", r"积分", r"特征值", r"概率", r"期望", r"递推",
    r"方程", r"求解", r"至少", r"最少", r"发散", r"整数解", r"最大值",
)
_DESIGN = _cues(
    r"\bdesign\b", r"\barchitecture\b", r"\bscal(?:e|able|ing)\b", r"\bdistributed\b",
    r"\bshard(?:ing|ed)?\b", r"\bconsisten(?:t|cy)\b", r"\breplicat\w+", r"\bfault[- ]toleran",
    r"\bmulti-region\b", r"\bactive-active\b", r"\bQPS\b", r"\b(?:million|billion)s?\b",
    r"\bper (?:second|minute|day)\b", r"\bpartitions?\b", r"\bconsensus\b", r"\bidempoten",
    r"\bexactly once\b", r"\bleader election\b", r"\bfailure (?:modes|scenarios|handling)\b",
    r"\bavailability\b", r"\bzero downtime\b",
    r"设计", r"架构", r"分布式", r"高并发", r"一致性", r"多活", r"分库分表", r"百万", r"亿",
    r"宕机", r"故障", r"幂等", r"每秒",
)
_ALGORITHM = _cues(
    r"\balgorithm\b", r"\bcomplexity\b", r"\bO\([^)]*\)", r"\bcorrectness\b", r"\boptimal\b",
    r"\bgreedy\b", r"\bdynamic programming\b", r"\bNP\b", r"\bamortized\b", r"\binvariants?\b",
    r"\block-free\b", r"\bmemory model\b", r"\bworst case\b", r"\bin linear time\b",
    r"\befficient(?:ly)?\b", r"\bconcurren\w+", r"\bmutex\b",
    r"算法", r"复杂度", r"最优", r"无锁", r"线性时间", r"最坏情况", r"并发",
)
_IMPERATIVE_HARD = _cues(
    # a hard verb opening any sentence ("... 100! have? Derive it.")
    r"(?:^|[.?!:;]\s+)(?:(?:now|then|also|next|ok|so),? )?(?:prove|show that|derive|"
    r"design|solve|compute|evaluate|count|minimi[sz]e|maximi[sz]e|implement and|"
    r"find (?:all|the (?:minimum|maximum|number|probability|expected))|"
    r"give an? (?:\w+ )?algorithm)\b",
    r"\bhow would you (?:prove|verify|derive|design|approach|show|solve)\b",
    r"(?:^|[。？！；])(?:再|那)?(?:证明|设计|求|推导|计算|给出一个)", r"[，,。]求", r"各有多少",
    r"推导一下",
)
_NUMBER = re.compile(  # quantities: digits, English number words, Chinese numerals + unit
    r"(?<![A-Za-z0-9_.])\d+(?:[.,]\d+)?|\b(?:two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve|twenty|hundred|thousand|twice|half|third|quarter|double|triple)\b|"
    r"[一二三四五六七八九十两半]+(?=[个只倍天年人元米千克斤分小时次辆本])",
    re.IGNORECASE,
)
_DEBUG = _cues(
    r"\bdeadlocks?\b", r"\brace condition\b", r"\bdata races?\b", r"\bmemory leak\b",
    r"\bleak\b", r"\bOOM\w*", r"\bOutOfMemory", r"\bhangs?\b", r"\bintermittent(?:ly)?\b",
    r"\bonly in production\b", r"\bunder load\b", r"\bsometimes\b", r"\broot cause\b",
    r"\bheap (?:dump|snapshot)s?\b", r"\bgrows?\b.*\b(?:MB|GB|hour)", r"\b\d+x slower\b",
    r"死锁", r"内存泄漏", r"竞态", r"偶尔", r"排查", r"持续上涨", r"变慢",
)
_RIGOR = _cues(
    r"\bstep[- ]by[- ]step\b", r"\brigorous(?:ly)?\b", r"\bjustify\b", r"\bformal(?:ly)?\b",
    r"\bshow (?:your|each|the) (?:work|steps?|reasoning)\b", r"\breason(?:ing)? (?:through|it out)\b",
    r"\bexplain precisely\b", r"\bshowing each step\b", r"\bprove (?:it|your|the|that|why)\b",
    r"\banaly[sz]e\b", r"\btrade-?offs?\b", r"\bsystematic(?:ally)?\b",
    r"逐步", r"严格", r"严谨", r"详细步骤", r"推理", r"分析", r"论证", r"取舍",
)
_ORDINARY = _cues(
    r"\bexplain\b", r"\bsummari[sz]e\b", r"\bsummary\b", r"\bwrite\b", r"\bdraft\b",
    r"\btranslate\b", r"\bcompare\b", r"\bdescribe\b", r"\brewrite\b", r"\brefactor\b",
    r"\bfix\b", r"\bemail\b", r"\bletter\b", r"\bpoem\b", r"\bstory\b", r"\bhaiku\b",
    r"\bscript\b", r"\bfunction\b", r"\bclass\b", r"\bquery\b", r"\bplan\b", r"\bitinerary\b",
    r"\brecommend\w*", r"\bhelp me\b", r"\bgive me\b", r"\boutline\b", r"\bpros and cons\b",
    r"\bfeedback\b", r"\bexample\b", r"\bcreate\b", r"\bwhy does\b", r"\bhow (?:do|can|should)\b",
    r"解释", r"总结", r"写", r"翻译", r"比较", r"介绍", r"改写", r"润色", r"推荐", r"帮我",
    r"计划", r"脚本", r"函数", r"例子", r"优缺点", r"区别", r"为什么", r"怎么",
)
_SIMPLE_OPENING = _cues(
    r"^(?:what|what's|who|when|where|which|is|are|does|do|how many|how much|define|name|"
    r"spell|convert|translate \"|can you tell me|how do you say)\b",
    r"^(?:什么是|谁|哪|多少|几|是否)", r"是什么|是谁|在哪|哪[个里条位年天国些]|多少|几点|怎么说|吗？?$",
)
_BREVITY = _cues(
    r"\bone (?:sentence|line|word)\b", r"\bbriefly\b", r"\bin short\b", r"\bquick question\b",
    r"一句话", r"简单(?:说|一句)",
)
_REASONING_ASK = _cues(
    r"\b(?:prove|derive|justify)\b", r"\bshow (?:that|why|how|your work|each step)\b",
    r"\bstep[- ]by[- ]step\b", r"\bexplain why\b", r"\bwhy is (?:it|this|that) true\b",
    r"\bhow would you (?:prove|verify|derive|design|approach|show|solve)\b",
    r"证明", r"推导", r"说明理由", r"说明原因", r"为什么成立", r"逐步",
)
_SMALL_TALK = _cues(
    r"^(?:hi|hello|hey|good (?:morning|evening|night)|thanks|thank you|ok|okay|yes|no|cool|"
    r"great|nice|got it)\b[^?]{0,40}$",
    r"^(?:你好|谢谢|早上好|晚上好|好的|明白了|嗯)",
)


@dataclass(frozen=True)
class Features:
    """Counts and flags of the last user turn, plus the conversation's shape."""

    words: int
    cjk_chars: int
    user_turns: int
    assistant_turns: int
    has_code: bool
    math_expr: int
    proof_math: int
    design: int
    algorithm: int
    debug: int
    rigor: int
    ordinary: int
    simple_opening: bool
    final_ask_simple: bool
    brevity: bool
    small_talk: bool
    questions: int
    history_hard: int
    imperative_hard: bool
    numbers: int

    @property
    def approx_tokens(self) -> int:
        return self.words + self.cjk_chars

    @property
    def hard_hits(self) -> int:
        return self.proof_math + self.design + self.algorithm + self.debug

    @property
    def has_history(self) -> bool:
        return self.assistant_turns > 0

    def vector(self) -> list[float]:
        """Numeric form for learned heads: counts squashed by log1p, flags as 0/1."""
        return [math.log1p(float(v)) for v in astuple(self)]

    @staticmethod
    def names() -> list[str]:
        return [f.name for f in fields(Features)]


def _text(message: dict) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content).strip()


def asks_reasoning(text: str) -> bool:
    """The text asks for a proof, derivation or justification."""
    return bool(_REASONING_ASK.search(text))


def last_user_text(messages: list[dict]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _text(users[-1] if users else messages[-1]) if messages else ""


def _final_ask(text: str) -> str:
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    last = sentences[-1].strip() if sentences else ""
    return _CLAUSE.split(last)[-1].strip() or last


def _hard_count(text: str) -> int:
    return sum(len(p.findall(text)) for p in (_PROOF_MATH, _DESIGN, _ALGORITHM, _DEBUG))


def extract(messages: list[dict]) -> Features:
    """Features of the last user message, plus the shape of the conversation."""
    last = last_user_text(messages)
    users = [m for m in messages if m.get("role") == "user"]
    earlier = " ".join(_text(m) for m in messages[:-1] if m.get("role") in ("user", "assistant"))
    ask = _final_ask(last)
    ask_size = len(_WORD.findall(ask)) + len(_CJK.findall(ask))
    return Features(
        words=len(_WORD.findall(last)),
        cjk_chars=len(_CJK.findall(last)),
        user_turns=len(users),
        assistant_turns=sum(1 for m in messages if m.get("role") == "assistant"),
        has_code=bool(_CODE.search(last)),
        math_expr=len(_MATH_EXPR.findall(last)),
        proof_math=len(_PROOF_MATH.findall(last)),
        design=len(_DESIGN.findall(last)),
        algorithm=len(_ALGORITHM.findall(last)),
        debug=len(_DEBUG.findall(last)),
        rigor=len(_RIGOR.findall(last)),
        ordinary=len(_ORDINARY.findall(last)),
        simple_opening=bool(_SIMPLE_OPENING.search(last)),
        final_ask_simple=ask != last and ask_size <= 24 and bool(_SIMPLE_OPENING.search(ask)),
        brevity=bool(_BREVITY.search(last)),
        small_talk=bool(_SMALL_TALK.search(last)),
        questions=last.count("?") + last.count("？"),
        history_hard=_hard_count(earlier) if earlier else 0,
        imperative_hard=bool(_IMPERATIVE_HARD.search(last)),
        numbers=len(_NUMBER.findall(last)),
    )
