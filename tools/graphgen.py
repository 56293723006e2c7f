"""A seeded synthetic Roam graph, shaped like real notes, for the benchmark.

``generate(blocks=200_000, cards=10_000, seed=7)`` returns the export as a list of pages:
pages of nested blocks with [[links]], #tags, **bold**, ((refs)), page attributes, and every
card block marked with #card (a quarter of them cloze, some reversed), answers as children.
The same arguments always give the same graph.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path
from typing import Any

WORDS = [
    "model", "attention", "gradient", "memory", "context", "learning", "token", "signal",
    "data", "weights", "layer", "research", "agent", "circuit", "feature", "reasoning",
    "scale", "compute", "loss", "training", "sparse", "neuron", "vector", "language",
    "theory", "review", "paper", "idea", "question", "answer", "pattern", "system",
]
UID_ALPHABET = string.ascii_letters + string.digits + "-_"


def generate(blocks: int = 200_000, cards: int = 10_000, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    per_page = 100
    page_count = max(1, blocks // per_page)
    titles = [f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}" for i in range(page_count)]
    card_every = max(1, blocks // max(cards, 1))
    uids: list[str] = []
    made = made_cards = 0
    pages: list[dict[str, Any]] = []
    for index, title in enumerate(titles):
        top: list[dict[str, Any]] = [
            {"string": f"Author:: [[{rng.choice(titles)}]]", "uid": _uid(rng)},
            {"string": f"Tags:: #[[{rng.choice(WORDS)}]] #{rng.choice(WORDS)}", "uid": _uid(rng)},
        ]
        made += 2
        stack: list[tuple[int, list[dict[str, Any]]]] = [(0, top)]
        while made < (index + 1) * per_page and made < blocks:
            depth = rng.choice((0, 0, 1, 1, 2, 3))
            while stack and stack[-1][0] > depth:
                stack.pop()
            depth = stack[-1][0]
            siblings = stack[-1][1]
            text = _sentence(rng, titles, uids)
            raw: dict[str, Any] = {"string": text, "uid": _uid(rng),
                                   "create-time": 1_700_000_000_000 + made}
            made += 1
            if made % card_every == 0 and made_cards < cards:
                made_cards += 1
                if made_cards % 4 == 0:
                    raw["string"] = text + " {" + rng.choice(WORDS) + "} #card"
                else:
                    reverse = " #reversed" if made_cards % 10 == 0 else ""
                    raw["string"] = f"{text}? #card{reverse}"
                    raw["children"] = [{"string": _sentence(rng, titles, uids), "uid": _uid(rng)}]
                    made += 1
            uids.append(raw["uid"])
            siblings.append(raw)
            kids: list[dict[str, Any]] = raw.setdefault("children", [])
            stack.append((depth + 1, kids))
        pages.append({"title": title, "uid": _uid(rng), "children": top})
    _drop_empty_children(pages)
    return pages


def _sentence(rng: random.Random, titles: list[str], uids: list[str]) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    roll = rng.random()
    if roll < 0.35:
        words.insert(rng.randrange(len(words)), f"[[{rng.choice(titles)}]]")
    if roll < 0.15:
        words.insert(rng.randrange(len(words)), f"**{rng.choice(WORDS)}**")
    if roll < 0.05:
        words.append(f"#{rng.choice(WORDS)}")
    if roll < 0.02 and uids:
        words.append(f"(({rng.choice(uids)}))")
    return " ".join(words).capitalize()


def _uid(rng: random.Random) -> str:
    return "".join(rng.choice(UID_ALPHABET) for _ in range(9))


def _drop_empty_children(pages: list[dict[str, Any]]) -> None:
    stack = [b for p in pages for b in p["children"]]
    while stack:
        raw = stack.pop()
        if not raw.get("children"):
            raw.pop("children", None)
        else:
            stack.extend(raw["children"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--blocks", type=int, default=200_000)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    pages = generate(args.blocks, args.cards, args.seed)
    args.output.write_text(json.dumps(pages), encoding="utf-8")


if __name__ == "__main__":
    main()
