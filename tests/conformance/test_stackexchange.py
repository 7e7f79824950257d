"""Stack Exchange documents against hand-checked real questions of beer.stackexchange.com.

The expectations were written by reading `../shared/corpus/stackexchange/beer.stackexchange.com/
Posts.xml` (the 2017 dump of the site), not by running our code: for each question, its answers'
`Id` and `Score` as the rows give them, ordered as docs/stackexchange.md says (numeric score,
highest first; ties to the smaller, older answer id), and for a few questions the whole document
text: the title, the question and the answers in that order, separated by blank lines, each body
as the page shows it (entities decoded, paragraphs and list items on their own lines, `<pre>`
lines and indentation as written, without the trailing blanks no page shows).

A second row puts the same questions beside RedPajama-v1's order (togethercomputer/RedPajama-Data,
data_prep/stack_exchange/filter.py and post_processing.py, commit
f54b86f259f7ed40069fc18c3d3ac3af7e5cc3ba): the `Score` attribute is kept as a string and the
answers are sorted by it, descending, Python's sort being stable (ties in file order, which in
this dump is ascending id). Where the two differ the difference is the documented one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from conformance.references import ConformanceTable
from llama_data.pipeline.document import Document
from llama_data.pipeline.stackexchange.reader import StackExchangeReader
from llama_data.pipeline.stackexchange.steps import PostFilter, PostHtmlToText, group_posts
from llama_data.pipeline.steps import run_steps

HAND = "hand-checked beer.stackexchange.com"
REDPAJAMA = "RedPajama-v1 stack_exchange"
NUMERIC = "answers by numeric score (docs/stackexchange.md), not by the score string"

# question id -> [(answer id, score)] in the documented order, read from Posts.xml
ANSWER_ORDER: dict[int, list[tuple[int, int]]] = {
    1: [(4, 13)],
    2: [(175, 13), (177, 12), (102, 7), (46, 6)],  # "7" and "6" sort above "13" as strings
    29: [],  # a question without answers
    154: [(176, 3)],
    256: [(264, 13), (267, 5), (274, 1), (699, 1), (265, -2)],  # tie, negative
    340: [(344, 5), (628, 3), (343, -4)],
    430: [(431, 16), (433, 16), (432, 3)],  # tie at the top
    976: [
        (981, 22),
        (977, 7),
        (2156, 4),
        (1078, 2),
        (1018, 1),
        (4608, 1),
        (4613, 1),
        (2151, 0),
        (3501, 0),
        (980, -1),
        (984, -1),
        (1115, -1),
        (1118, -1),
    ],
    2153: [(3191, 6), (2155, 2), (2154, 1), (2157, 1)],
    3344: [(3345, 0), (3355, 0), (3363, 0)],  # all tied
    6561: [
        (6563, 19),
        (6567, 11),
        (6568, 9),  # "9" sorts above "19" and "11" as a string
        (6564, 7),
        (6565, 5),
        (6570, 5),
        (6573, 5),
        (6586, 2),
        (6566, 1),
        (6580, -2),
    ],
}

# Whole documents, written from the rows' Title and Body attributes.
DOCUMENT_TEXT: dict[int, str] = {
    29: (
        'What does the term "imperial" represent in beer styles or names?\n'
        "\n"
        'I\'m trying to understand what I can assume about an "Imperial Stout" relative to a '
        '"Stout," etc.\n'
        "\n"
        'I know anecdotally that they are "heavier," but online sources seem to lack agreement '
        "on a specific meaning, with some suggesting that they're hoppier, others saying they're "
        'higher alcohol content, and some using vague terms like "full-bodied".\n'
        "\n"
        'Does "imperial" have a real, agreed-upon meaning, or is it just a marketing/description '
        "modifier that everyone uses differently?"
    ),
    154: (
        "Can you order beers by strength of flavour?\n"
        "\n"
        "I imagine the might would look something like:\n"
        "\n"
        "Pale Lager\n"
        "Generic lager.\n"
        "Pilsner\n"
        "Pale Ale (Which style?)\n"
        "Imperial Pale Ale\n"
        "Stout\n"
        "\n"
        "Of course, I'm not a full on beer aficionado, I don't know all the styles.\n"
        "\n"
        "I think you'd have trouble with this because of different dimensions of flavor. Beer "
        "has a very complex flavor and different recipes are different. One can order beers (if "
        "specific enough to include a brand) along any dimension of flavor, but I am not sure "
        "that you can order them consistently along all dimensions.\n"
        "\n"
        "Here are dimensions I would think of:\n"
        "\n"
        "1. Malty/caramel\n"
        "2. Hop-forward\n"
        "3. Bitter (Hops)\n"
        "4. Yeasty\n"
        "\n"
        "It isn't clear to me how one rates strength of flavor between an IPA and a porter for "
        'example. So I think the answer here is a simple "no, you can\'t."'
    ),
    430: (
        "What is the German Beer Purity Law?\n"
        "\n"
        'I see some US beers advertising that they brew according to the "German Beer Purity '
        'Law." What is that, and is it still relevant today?\n'
        "\n"
        "The German Beer Purity Law, also know as the Reinheitsgebot, dictates what ingredients "
        "may be used to create beer in Germany: barley, hops, and water. It dates back to 1487, "
        "which is why you may notice the omission of yeast: it hadn't been recognized as an "
        "ingredient yet. The law was removed from the books in 1993, and replaced by another "
        "similar law which allowed yeast, sugar, and some of the more common brewing "
        "ingredients.\n"
        "\n"
        "In the case of a US brewery making such a claim, it's a sort of advertisement toward "
        'the "purity" of their product, i.e., they don\'t use adjuncts (rice, etc) or other '
        "flavorings (fruit, spices) in their beer.\n"
        "\n"
        "In addition to what's been said, the original purpose of the order was to protect "
        "consumers from brewers who used problematic (toxic/psychoactive) herbs to preserve "
        "their beer, instead forcing them to use hops. Also only using barley allowed wheat and "
        "rye to be used exclusively by bakers to keep the cost of bread down.\n"
        "\n"
        "One could argue the tradition has kept German brewers from innovating, and also keeps a "
        "lot of interesting styles out of reach. Most Belgian-style beers, despite having a "
        "similar heritage to German styles, will include candi sugar and spices like anise and "
        "coriander. Technically, sour beers are also out. Also, a lot of the Trappist ales will "
        "use sugar adjuncts. Today, it's mostly a statement of adherence to tradition, which can "
        "carry good marketing weight. But this is beer, not marketing.\n"
        "\n"
        "The purity law has been introduced to regulate the production of beer in the Holy "
        "Roman Empire. The original text stipulated that the only ingredients that could be "
        "used in the production of beer were water, barley and hops.\n"
        "\n"
        'The "Reinheitsgebot" has actually survived the Holy Roman Empire. Many German brewers '
        "are proud of this heritage and claim to stick to it. It's relevance today is "
        "commercial. It's used as a label for marketing reasons."
    ),
}

# Passages of longer documents: (question id, text that must appear in its document).
PASSAGES: list[tuple[int, str]] = [
    # answer 3252: a <pre> block whose lines are indented by four spaces
    (
        2168,
        "In Brazil:\n\n    1. Skol\n    2. Brahma\n    3. Antarctica\n    4. Nova Schin\n"
        "    5. Kaiser\n    6. Itaipava\n    7. Crystal\n    8. Devassa\n    9. Sol\n"
        "    10. Bohemia\n\nLINK: Top 10 cervejas mais vendidas no Brasil",
    ),
    # answer 3255: an unordered list
    (2168, "In Lebanon:\n\n- Almaza\n- Heineken\n- Corona"),
    # answer 3296: an ordered list
    (2168, "Most popular beer in Sri Lanka\n\n1. Lions\n2. Carlsberg"),
    # answer 2157: a list between paragraphs, then the answer after it in score order (2154
    # and 2157 both score 1: the older 2154 comes first)
    (
        2153,
        "A couple other things contribute to the Belgian beer culture:\n\n- They didn't have to "
        "follow the (pointlessly restrictive) Reinheitsgebot, thus allowing the use of fruit, "
        "spices, Belgian 'candi' sugar (and probably other things).\n- It is said that the wild "
        "yeasts in certain parts of Belgium make great beer.\n\nEntschuldigung an Deutschland.",
    ),
    # answer 3191: list items made of paragraphs stay one line each
    (
        2153,
        "To touch on a few of your questions:\n\n- As previously alluded, beer served a "
        "utilitarian purpose as a dietary staple and nutritional supplement for an agrarian "
        "society.",
    ),
    (
        2153,
        '(loosely translated: "beers for keeping") to survive the winters.\n- Abbey ales are '
        "not as varied as they initially appear.",
    ),
    (2153, "between an ESB and a dubbel.\n\nIn addition to the above referenced works,"),
    # the question's title, then its body
    (
        2153,
        "Why does Belgium have such a rich and profound brewing culture?\n\nI discovered craft "
        "beers some years ago,",
    ),
]


@functools.cache
def _documents(path: Path) -> dict[int, Document]:
    posts = [i for i in StackExchangeReader().read_path(str(path)) if isinstance(i, Document)]
    kept = [
        o for o in run_steps([PostFilter(), PostHtmlToText()], posts) if isinstance(o, Document)
    ]
    return {d.meta["question_id"]: d for d in group_posts(kept) if isinstance(d, Document)}


@pytest.fixture
def beer_documents(corpus: Path) -> dict[int, Document]:
    """Our documents of the site (filter, HTML to text, grouping: the stage without an engine)."""
    return _documents(corpus / "stackexchange" / "beer.stackexchange.com" / "Posts.xml")


def our_order(doc: Document) -> list[tuple[int, int]]:
    return list(zip(doc.meta["answer_ids"], doc.meta["answer_scores"], strict=True))


def redpajama_order(answers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted by the score string, descending, stable over file order (ascending id)."""
    in_file = sorted(answers)
    return sorted(in_file, key=lambda a: str(a[1]), reverse=True)


@pytest.mark.corpus
def test_answer_order(beer_documents: dict[int, Document], table: ConformanceTable) -> None:
    cases = [
        (f"question {q}", q, our_order(beer_documents[q]), expected)
        for q, expected in ANSWER_ORDER.items()
    ]
    row = table.compare(HAND, "answer order (ids, scores)", cases)
    assert row.unexplained == 0, row.first_difference


@pytest.mark.corpus
def test_answer_order_beside_redpajama(
    beer_documents: dict[int, Document], table: ConformanceTable
) -> None:
    def numeric(question: int, ours: list, theirs: list) -> str | None:
        by_number = sorted(theirs, key=lambda a: (-a[1], a[0]))
        return NUMERIC if ours == by_number and ours != theirs else None

    cases = [
        (f"question {q}", q, our_order(beer_documents[q]), redpajama_order(expected))
        for q, expected in ANSWER_ORDER.items()
    ]
    row = table.compare(REDPAJAMA, "answer order (scores as strings)", cases, numeric)
    assert row.unexplained == 0, row.first_difference
    assert row.explained.get(NUMERIC) == 5  # questions 2, 256, 430, 976, 6561


@pytest.mark.corpus
def test_document_text(beer_documents: dict[int, Document], table: ConformanceTable) -> None:
    cases = [
        (f"question {q}", q, beer_documents[q].text, text) for q, text in DOCUMENT_TEXT.items()
    ]
    cases += [
        (f"question {q}, passage {i}", passage, passage in beer_documents[q].text, True)
        for i, (q, passage) in enumerate(PASSAGES)
    ]
    row = table.compare(HAND, "document text (title, question, answers)", cases)
    assert row.unexplained == 0, row.first_difference
