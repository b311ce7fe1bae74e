"""The EvidenceLoop: answer a multi-hop question with citations, or refuse and say why.

    plan -> retrieve -> read -> verify -+-> answer (every hop supported)
               ^                        +-> retrieve (a hop lacks evidence, budget left)
               +------------------------+-> refuse (budget spent: names the hops lacking it)

The model proposes, code disposes (DESIGN.md): the model plans hops, reads passages into
claims and phrases the final answer; deterministic code checks every quote against its chunk
(`retrieval.ledger`), decides whether each hop is supported, refines queries, counts the
budget and picks the outcome. A refusal is a result, not an exception.

Cost: one plan call, one read call per passage of each open hop per round, one answer call;
every call's max_tokens is capped to what its schema needs (small local models loop when
allowed to run on). Query refinement is code, not a model call: a hop that found nothing
searches again with its earlier hops' answers and the whole question added, and never re-reads
a chunk.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph

from evergraph.agents.calls import NodeCall
from evergraph.agents.evidence_prompts import (
    MAX_HOPS,
    AnswerOut,
    PlanOut,
    ReadOut,
    answer_messages,
    plan_messages,
    read_messages,
)
from evergraph.agents.evidence_types import (
    REF,
    Answer,
    Hop,
    HopStatus,
    LoopSettings,
    Refusal,
    TraceEvent,
)
from evergraph.embed.base import Embedder
from evergraph.graph.store.base import GraphStore
from evergraph.llm.base import LLM, Usage
from evergraph.retrieval.hybrid import Hit, HybridOptions, HybridRetriever
from evergraph.retrieval.ledger import Ledger, Verdict, answer_in
from evergraph.retrieval.text import YES_NO, answers_yes_no, normalize_answer

__all__ = ["Answer", "EvidenceLoop", "Hop", "HopStatus", "LoopSettings", "Refusal", "ask"]


class LoopState(TypedDict, total=False):
    question: str
    hops: list[Hop]
    ledger: Ledger
    round: int
    batches: dict[int, list[Hit]]  # hop index -> chunks to read this round
    usage: Usage
    trace: Annotated[list[TraceEvent], operator.add]
    decision: Literal["answer", "loop", "refuse"]
    reason: str
    result: Answer | Refusal


def _decision(state: LoopState) -> str:
    return state["decision"]


def _event(node: str, state: LoopState, message: str, **data: Any) -> TraceEvent:
    return TraceEvent(node=node, round=state.get("round", 0), message=message, data=data)


class EvidenceLoop:
    """The loop's nodes over one store, embedder and model; `graph()` wires them."""

    def __init__(
        self,
        *,
        retriever: HybridRetriever,
        llm: LLM,
        settings: LoopSettings | None = None,
        as_of: datetime | None = None,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.settings = settings or LoopSettings()
        self._call = NodeCall(llm, self.settings.temperature)
        self.as_of = as_of

    # -- nodes ----------------------------------------------------------------------------

    async def plan(self, state: LoopState) -> LoopState:
        question = state["question"]
        out, usage = await self._call(plan_messages(question), PlanOut, self.settings.plan_tokens)
        planned = [q.strip() for q in out.hops if q.strip()] if out else []
        if not planned:  # a plan the model could not make: the question is the only hop
            planned = [question]
        planned = planned[:MAX_HOPS]
        hops = [Hop(index=i, question=q) for i, q in enumerate(planned, start=1)]
        note = "planned" if out else "no valid plan: one hop"
        event = TraceEvent(node="plan", round=0, message=note, data={"hops": planned})
        return {
            "hops": hops,
            "ledger": Ledger(),
            "round": 1,
            "usage": state.get("usage", Usage()) + usage,
            "trace": [event],
        }

    def _query(self, hop: Hop, hops: Sequence[Hop], question: str) -> str:
        answers = {h.index: h.answer for h in hops if h.answer}
        query = REF.sub(lambda m: answers.get(int(m.group(1)), m.group(0)), hop.question)
        if hop.attempts == 0:
            return query
        earlier = [a for i, a in answers.items() if i < hop.index]
        return " ".join([query, *earlier, question])

    def _ready(self, hops: Sequence[Hop]) -> list[Hop]:
        done = {h.index for h in hops if h.status is HopStatus.SUPPORTED}
        return [
            h
            for h in hops
            if h.status is not HopStatus.SUPPORTED and not h.exhausted and h.depends_on() <= done
        ]

    async def retrieve(self, state: LoopState) -> LoopState:
        hops = [h.model_copy() for h in state["hops"]]
        batches: dict[int, list[Hit]] = {}
        events = []
        for hop in self._ready(hops):
            hop.query = self._query(hop, hops, state["question"])
            hits = await asyncio.to_thread(
                self.retriever.search,
                hop.query,
                k=self.settings.read_k,
                as_of=self.as_of,
                exclude=hop.read,
            )
            hop.attempts += 1
            hop.exhausted = not hits
            if hits:
                batches[hop.index] = hits
            events.append(
                _event(
                    "retrieve",
                    state,
                    f"hop {hop.index}: {len(hits)} chunks",
                    hop=hop.index,
                    query=hop.query,
                    chunks=[h.chunk_id for h in hits],
                )
            )
        return {"hops": hops, "batches": batches, "trace": events}

    async def read(self, state: LoopState) -> LoopState:
        """Each passage is read on its own: given four at once, a small model answers from
        whichever names the asked relation, about whatever subject (one call per passage
        costs the same prompt tokens, and the server batches them)."""
        hops = {h.index: h.model_copy() for h in state["hops"]}
        ledger = state["ledger"].model_copy(deep=True)
        jobs = [(i, hit) for i, hits in state.get("batches", {}).items() for hit in hits]
        calls = [
            self._call(
                read_messages(
                    state["question"], hops[i].query, hit, passage_chars=self.settings.passage_chars
                ),
                ReadOut,
                self.settings.read_tokens,
            )
            for i, hit in jobs
        ]
        usage = state["usage"]
        reads: dict[int, list[tuple[Hit, ReadOut | None]]] = {}
        for (index, hit), (out, spent) in zip(jobs, await asyncio.gather(*calls), strict=True):
            usage = usage + spent
            reads.setdefault(index, []).append((hit, out))
        events = []
        for index, pairs in reads.items():
            hop = hops[index]
            hop.read = [*hop.read, *(h.chunk_id for h, _ in pairs)]
            given = {
                normalize_answer(hops[i].answer or "") for i in hop.depends_on() if hops[i].answer
            }
            kept: list[str] = []
            rejected: list[str] = []
            for hit, out in pairs:
                k, r = self._record(
                    ledger, hop, hit, out, state.get("round", 0), given, state["question"]
                )
                kept += k
                rejected += r
            invalid = sum(out is None for _, out in pairs)
            events.append(
                _event(
                    "read",
                    state,
                    f"hop {index}: {len(kept)} claims kept, {len(rejected)} rejected"
                    + (f" ({invalid} reads without valid output)" if invalid else ""),
                    hop=index,
                    kept=kept,
                    rejected=rejected,
                )
            )
        return {"hops": list(hops.values()), "ledger": ledger, "usage": usage, "trace": events}

    def _record(
        self,
        ledger: Ledger,
        hop: Hop,
        hit: Hit,
        out: ReadOut | None,
        round: int,
        given: set[str],
        question: str,
    ) -> tuple[list[str], list[str]]:
        """Offer each claim to the ledger, which checks it against its passage (and the
        user's question, whose names are no answer)."""
        kept: list[str] = []
        rejected: list[str] = []
        for claim in out.claims if out else []:
            entry = ledger.admit(
                hop=hop.index,
                sub_question=hop.query,
                chunk_id=hit.chunk_id,
                source_id=hit.source_id,
                text=hit.text,
                quote=claim.quote,
                answer=claim.answer,
                given=given,
                question=question,
                round=round,
                min_score=self.settings.quote_match,
            )
            if isinstance(entry, str):
                rejected.append(f"{hit.chunk_id}: {entry}")
            else:
                kept.append(entry.id)
        return kept, rejected

    def verify(self, state: LoopState) -> LoopState:
        hops = [h.model_copy() for h in state["hops"]]
        ledger = state["ledger"].model_copy(deep=True)
        for hop in hops:
            res = ledger.resolve(hop.index)
            hop.answer = res.answer
            hop.status = (
                HopStatus.SUPPORTED
                if res.answer is not None
                else HopStatus.CONTESTED
                if res.contested
                else HopStatus.OPEN
            )
        missing = [h for h in hops if h.status is not HopStatus.SUPPORTED]
        spent = state["usage"].prompt_tokens + state["usage"].completion_tokens
        round_ = state.get("round", 1)
        decision: Literal["answer", "loop", "refuse"] = "loop"
        reason = ""
        if not missing:
            decision = "answer"
        elif round_ >= self.settings.max_rounds:
            decision, reason = "refuse", f"{round_} rounds (the budget) spent"
        elif spent >= self.settings.max_tokens:
            decision, reason = "refuse", f"{spent} tokens spent (budget {self.settings.max_tokens})"
        elif not self._ready(hops):
            decision, reason = "refuse", "no unread chunk left to search"
        summary = {h.index: h.status.value for h in hops}
        return {
            "hops": hops,
            "ledger": ledger,
            "decision": decision,
            "reason": reason,
            "round": round_ + 1 if decision == "loop" else round_,
            "trace": [_event("verify", state, decision, hops=summary, tokens=spent)],
        }

    async def answer(self, state: LoopState) -> LoopState:
        ledger, hops = state["ledger"], state["hops"]
        support = [e for e in ledger.entries if e.verdict is Verdict.SUPPORTED]
        out, usage = await self._call(
            answer_messages(state["question"], support), AnswerOut, self.settings.answer_tokens
        )
        valid = {e.id for e in support}
        citations = [c for c in dict.fromkeys(out.citations) if c in valid] if out else []
        cited = [e for e in support if e.id in citations] or support
        text = out.answer.strip() if out else ""
        polar = normalize_answer(text) in YES_NO
        grounded = (
            bool(text)
            and polar == answers_yes_no(state["question"])
            and (
                any(answer_in(text, e.quote) for e in cited)
                or any(answer_in(text, h.answer or "") for h in hops)
            )
        )
        note = "answered"
        if not grounded:  # the last hop's answer is in its quotes by construction
            text, cited, note = (
                hops[-1].answer or "",
                support,
                "answer not in the evidence: last hop's",
            )
        usage = state["usage"] + usage
        trace = [_event("answer", state, note, answer=text, citations=[e.id for e in cited])]
        result = Answer(
            text=text,
            citations=[e.id for e in cited],
            ledger=ledger,
            hops=hops,
            trace=[*state.get("trace", []), *trace],
            usage=usage,
        )
        return {"usage": usage, "trace": trace, "result": result}

    def refuse(self, state: LoopState) -> LoopState:
        hops = state["hops"]
        missing = [h for h in hops if h.status is not HopStatus.SUPPORTED]
        lacks = "; ".join(
            f"hop {h.index} ({h.query or h.question!r}): "
            + ("contradictory evidence" if h.status is HopStatus.CONTESTED else "no evidence")
            for h in missing
        )
        reason = f"{lacks} — {state.get('reason', '')}"
        trace = [_event("refuse", state, reason)]
        result = Refusal(
            reason=reason,
            missing_hops=missing,
            ledger=state["ledger"],
            hops=hops,
            trace=[*state.get("trace", []), *trace],
            usage=state["usage"],
        )
        return {"trace": trace, "result": result}

    # -- wiring ---------------------------------------------------------------------------

    def graph(self) -> Any:
        """The compiled LangGraph StateGraph."""
        g = StateGraph(LoopState)
        g.add_node("plan", self.plan)
        g.add_node("retrieve", self.retrieve)
        g.add_node("read", self.read)
        g.add_node("verify", self.verify)
        g.add_node("answer", self.answer)
        g.add_node("refuse", self.refuse)
        g.add_edge(START, "plan")
        g.add_edge("plan", "retrieve")
        g.add_edge("retrieve", "read")
        g.add_edge("read", "verify")
        g.add_conditional_edges(
            "verify",
            _decision,
            {"answer": "answer", "loop": "retrieve", "refuse": "refuse"},
        )
        g.add_edge("answer", END)
        g.add_edge("refuse", END)
        return g.compile()

    async def run(self, question: str) -> Answer | Refusal:
        # plan + 3 nodes a round + the outcome, with room to spare
        limit = 3 * self.settings.max_rounds + 5
        final = await self.graph().ainvoke(
            {"question": question, "usage": Usage(), "trace": []},
            config={"recursion_limit": limit},
        )
        result: Answer | Refusal = final["result"]
        return result


async def ask(
    question: str,
    *,
    store: GraphStore,
    embedder: Embedder,
    llm: LLM,
    settings: LoopSettings | None = None,
    retrieval: HybridOptions | None = None,
    as_of: datetime | None = None,
) -> Answer | Refusal:
    """Answer `question` from `store` with citations into the evidence ledger, or refuse.

    `embedder` must be the one that embedded the store's chunks; `as_of` restricts the
    evidence to documents published (and facts holding) by then.
    """
    loop = EvidenceLoop(
        retriever=HybridRetriever(store, embedder, retrieval),
        llm=llm,
        settings=settings,
        as_of=as_of,
    )
    return await loop.run(question)
