"""How well entity resolution's fuzzy and embedding steps separate variants from distinct names.

    .venv/bin/python benchmarks/bench_resolve.py [--text2kg DIR] [--arxiv FILE]
        [--scierc FILE ...] [--embedder minilm|none] [--out DIR]

Two sets of real names, resolved the way `graph/resolve.py` does (best match within the type,
vetoes applied, fuzzy then embeddings):

- dbpedia: the entities of Text2KGBench's DBpedia ground truth (types from the ontologies'
  domain/range), with arXiv author names added to the Person type as distractors; queries are
  generated variants of the DBpedia names (typos, dropped accents and punctuation, initials,
  "The"), seeded.
- scierc: within each SciERC abstract, one name per annotated entity (Generic ones left out) in
  an index; queries are the other names of co-referent clusters.

Every entity is also queried against the others of its type: a match there is a false merge.
Pairs whose names are the same after normalisation (case, accents, punctuation, plural, an
initial on one side) are no negatives: no resolver could tell them apart by name. Prints recall
of variants and false-merge rates per threshold; writes one JSON line per query (the best match
and score of each step) to OUT/resolve_predictions.jsonl. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evergraph.graph.names import NameIndex, normalise, similarity, vetoed

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FUZZY = (90.0, 92.0, 94.0, 95.0, 96.0, 97.0, 98.0)
COSINE = (0.85, 0.88, 0.90, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97)
NEIGHBOURS = 5  # embedding candidates checked against the vetoes, as ResolveSettings


@dataclass
class Group:
    """The entities one query is resolved against: one type (of one abstract, for SciERC)."""

    entities: list[tuple[str, str]]  # (entity key, name)
    index: NameIndex | None = None
    vectors: np.ndarray | None = None
    counts: Counter[str] | None = None

    def twins(self) -> Counter[str]:
        """How many entities of the group have each name (normalised, without spaces)."""
        if self.counts is None:
            self.counts = Counter(name_key(n) for _, n in self.entities)
        return self.counts

    def names(self) -> NameIndex:
        if self.index is None:
            self.index = NameIndex()
            for key, name in self.entities:
                self.index.add(name, key)
        return self.index


@dataclass
class Query:
    dataset: str
    kind: str  # "variant" (gold is its entity) or "distinct" (the entity itself, excluded)
    type: str
    name: str
    gold: str
    group: Group = field(repr=False)
    fuzzy: tuple[str | None, float] = (None, 0.0)
    embedding: tuple[str | None, float] = (None, 0.0)
    same_name: bool = False  # a distinct entity whose nearest other has the same name


def dbpedia_entities(folder: Path) -> dict[str, str]:
    """name -> type, the type most often given by the relations the name takes part in."""
    types: dict[str, Counter[str]] = defaultdict(Counter)
    for truth in sorted(folder.glob("ground_truth/*.jsonl")):
        number = truth.name.split("_")[1]
        ontology = json.loads(next(folder.glob(f"ontologies/{number}_*.json")).read_text())
        relations = {r["label"]: r for r in ontology["relations"]}
        for line in truth.read_text().splitlines():
            for t in json.loads(line)["triples"]:
                r = relations.get(t["rel"])
                for name, type in ((t["sub"], r and r["domain"]), (t["obj"], r and r["range"])):
                    if type and type[0].isupper() and not re.fullmatch(r"[\d.,\s-]+", name):
                        types[name.replace("_", " ").strip()][type] += 1
    return {n: c.most_common(1)[0][0] for n, c in types.items()}


def variants(name: str, type: str, rng: random.Random) -> list[str]:
    out = {re.sub(r"[.,']", "", name), name.replace("-", " ")}
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    out.add(plain)
    letters = [i for i in range(1, len(name) - 2) if name[i : i + 2].isalpha()]
    if len(name) >= 6 and letters:
        i = rng.choice(letters)
        out.add(name[:i] + name[i + 1] + name[i] + name[i + 2 :])  # two letters swapped
        j = rng.choice(letters)
        out.add(name[:j] + name[j + 1 :])  # one letter dropped
    if name.startswith("The "):
        out.add(name[4:])
    words = name.split()
    if type == "Person" and len(words) == 2 and words[0].isalpha():
        out.add(f"{words[0][0]}. {words[1]}")
    return sorted(v for v in out if normalise(v) != normalise(name))


def dbpedia(folder: Path, arxiv: Path, seed: int) -> Iterator[Query]:
    entities = dbpedia_entities(folder)
    by_type: dict[str, list[str]] = defaultdict(list)
    for name, type in entities.items():
        by_type[type].append(name)
    authors = {a for line in arxiv.open() for a in json.loads(line)["authors"]}
    by_type["Person"] = sorted({*by_type["Person"], *authors})
    rng = random.Random(seed)
    for type, names in sorted(by_type.items()):
        group = Group([(n, n) for n in names])
        for n in names:
            if n in entities:
                for v in variants(n, type, rng):
                    yield Query("dbpedia", "variant", type, v, n, group)
            yield Query("dbpedia", "distinct", type, n, n, group)


def scierc(files: list[Path]) -> Iterator[Query]:
    for file in files:
        for line in file.open():
            doc = json.loads(line)
            tokens = [t for s in doc["sentences"] for t in s]
            types = {(a, b): t for s in doc["ner"] for a, b, t in s}

            def text(a: int, b: int, tokens: list[str] = tokens) -> str:
                return " ".join(tokens[a : b + 1]).replace("-LRB- ", "(").replace(" -RRB-", ")")

            entities: list[tuple[str, list[str]]] = []
            clustered = set()
            for cluster in doc["clusters"]:
                clustered.update(map(tuple, cluster))
                names: dict[str, dict[str, str]] = defaultdict(dict)
                for a, b in cluster:
                    if types.get((a, b), "Generic") != "Generic":
                        names[types[(a, b)]].setdefault(normalise(text(a, b)), text(a, b))
                entities += [(t, list(n.values())) for t, n in names.items()]
            entities += [
                (t, [text(a, b)])
                for (a, b), t in types.items()
                if (a, b) not in clustered and t != "Generic"
            ]
            groups: dict[str, Group] = defaultdict(lambda: Group([]))
            for i, (type, names_) in enumerate(entities):
                groups[type].entities.append((str(i), names_[0]))
            for i, (type, names_) in enumerate(entities):
                for v in names_[1:]:
                    yield Query("scierc", "variant", type, v, str(i), groups[type])
                yield Query("scierc", "distinct", type, names_[0], str(i), groups[type])


def name_key(name: str) -> str:
    return normalise(name).replace(" ", "")


def same_name(a: str, b: str) -> bool:
    return similarity(normalise(a), normalise(b)) == 100.0


def resolve(q: Query, vectors: dict[str, np.ndarray]) -> None:
    """The best fuzzy and embedding matches, as the resolver finds them (a distinct entity
    is left out of its own index)."""
    exclude = q.gold if q.kind == "distinct" else None
    found = q.group.names().best(q.name, min(FUZZY), exclude=exclude)
    q.fuzzy = found or (None, 0.0)
    names = dict(q.group.entities)
    if exclude is not None:
        twins = q.group.twins()
        q.same_name = twins[name_key(q.name)] > 1 or bool(
            found and same_name(q.name, names[found[0]])
        )
    if not vectors:
        return
    if q.group.vectors is None:
        q.group.vectors = np.stack([vectors[n] for _, n in q.group.entities])
    scores = q.group.vectors @ vectors[q.name]
    query = normalise(q.name)
    for i in np.argsort(-scores)[: NEIGHBOURS + 1]:
        key, name = q.group.entities[int(i)]
        if key != exclude and not vetoed(query, normalise(name)):
            q.embedding = (key, float(scores[i]))
            return


def rates(queries: list[Query], step: str, threshold: float, after: float | None) -> str:
    """Variants found (and wrongly merged), distinct names merged, for one step; `after`: only
    queries the fuzzy step at that threshold left unresolved."""
    variants_ = [q for q in queries if q.kind == "variant"]
    distinct = [q for q in queries if q.kind == "distinct" and not q.same_name]

    def merged(q: Query) -> str | None:
        if after is not None and q.fuzzy[1] >= after:
            return None
        key, score = getattr(q, step)
        return key if score >= threshold else None

    found = sum(merged(q) == q.gold for q in variants_)
    wrong = sum(merged(q) not in (None, q.gold) for q in variants_)
    false = sum(merged(q) not in (None, q.gold) for q in distinct)
    return (
        f"variants found {found / len(variants_):6.1%} (wrong entity {wrong}) | "
        f"distinct merged {false / len(distinct):6.2%} ({false}/{len(distinct)})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--text2kg", type=Path, default=DATA / "text2kgbench" / "dbpedia_webnlg")
    p.add_argument(
        "--arxiv", type=Path, default=DATA / "arxiv_astroph_kg4s" / "arxiv_astroph_1000.jsonl"
    )
    p.add_argument(
        "--scierc",
        type=Path,
        nargs="+",
        default=[DATA / "scierc" / "dev.json", DATA / "scierc" / "train.json"],
    )
    p.add_argument("--embedder", choices=["minilm", "none"], default="minilm")
    p.add_argument("--fuzzy-for-embedding", type=float, default=95.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()

    sets = {
        "dbpedia": list(dbpedia(args.text2kg, args.arxiv, args.seed)),
        "scierc": list(scierc([f for f in args.scierc if f.exists()])),
    }
    vectors: dict[str, np.ndarray] = {}
    if args.embedder == "minilm":
        from evergraph.config import EmbedSettings
        from evergraph.embed.sentence import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(EmbedSettings())
        names = sorted(
            {
                n
                for qs in sets.values()
                for q in qs
                for n in (q.name, *dict(q.group.entities).values())
            }
        )
        vectors = dict(zip(names, embedder.embed(names), strict=True))
    for queries in sets.values():
        for q in queries:
            resolve(q, vectors)

    for name, queries in sets.items():
        kinds = Counter(q.kind for q in queries)
        print(
            f"\n{name}: {kinds['variant']} variant queries, {kinds['distinct']} distinct entities"
        )
        for t in FUZZY:
            print(f"  fuzzy >= {t:5.1f}: {rates(queries, 'fuzzy', t, None)}")
        if vectors:
            for t in COSINE:
                line = rates(queries, "embedding", t, args.fuzzy_for_embedding)
                print(f"  embedding >= {t:.2f} after fuzzy {args.fuzzy_for_embedding:g}: {line}")

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "resolve_predictions.jsonl"
    with out.open("w") as f:
        for queries in sets.values():
            for q in queries:
                row = {k: v for k, v in vars(q).items() if k != "group"}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"\npredictions: {out}")


if __name__ == "__main__":
    main()
