"""Writes llama_data/demo/commoncrawl/demo.warc.wet.gz: pages written for this project, in
Common Crawl's WET format (one gzip member per record, CRLF headers, warcinfo first).

The pages are chosen to exercise every CCNet step: navigation and footer lines repeated across
sites (line dedup), pages in German, French, Spanish and Chinese (language id), a keyword-stuffed
spam page (perplexity tail), a copy of an article under another URL (document dedup) and a stub
page (length). Rerun after editing PAGES; the output is deterministic.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[1] / "llama_data" / "demo" / "commoncrawl" / "demo.warc.wet.gz"
)

NAV = ["Home", "About us", "Contact", "Log in", "Search this site"]
FOOT = [
    "Subscribe to our newsletter for weekly updates.",
    "© 2023 Example Media Group. All rights reserved.",
    "Privacy policy | Terms of use | Cookie settings",
]
FOOT_2 = [
    "Subscribe to our newsletter for weekly updates.",
    "© 2021 Example Media Group. All rights reserved.",
    "Privacy policy | Terms of use | Cookie settings",
]

BREAD = [
    "How to bake a simple loaf of bread at home",
    "Baking bread at home needs only flour, water, salt and yeast, yet the result depends on patience more than on any recipe.",
    "Mix the flour and water first and let the dough rest for half an hour, so that the flour can absorb the water before you add the salt and the yeast.",
    "Knead the dough until it feels smooth and elastic, then leave it in a warm place until it has doubled in size.",
    "Shape the loaf gently, place it in a hot oven and bake it for about forty minutes, until the crust is deep brown and the bottom sounds hollow when you tap it.",
    "Let the bread cool on a rack before you cut it, because the crumb keeps cooking for a while after it leaves the oven.",
]

PAGES: list[tuple[str, list[str]]] = [
    ("https://kitchen.example.com/bread", NAV + BREAD + FOOT),
    (
        "https://travel.example.com/cycling-the-river",
        NAV
        + [
            "Cycling along the river in early autumn",
            "The path follows the river for almost eighty kilometres, from the mountains in the north to the old port in the south.",
            "Most of the route is flat and paved, which makes it a good choice for families and for riders who are not used to long distances.",
            "Small villages along the way offer cafes, bicycle repair shops and simple rooms for the night.",
            "In autumn the trees along the water turn yellow and red, and the morning mist often lies over the fields until noon.",
            "Bring a light rain jacket, because the weather in the valley can change quickly in the afternoon.",
        ]
        + FOOT,
    ),
    (
        "https://garden.example.org/tomatoes",
        NAV
        + [
            "Growing tomatoes in a small garden",
            "Tomatoes need at least six hours of direct sunlight a day, so choose the brightest corner of the garden for them.",
            "Plant the seedlings deeply, up to the first leaves, because the buried stem will grow new roots and make the plant stronger.",
            "Water the plants at the base in the morning and avoid wetting the leaves, which helps to prevent disease.",
            "Tie the stems to a stake as they grow and remove the small shoots that appear between the main stem and the branches.",
            "Pick the fruit when it is fully coloured and slightly soft, and keep it at room temperature rather than in the fridge.",
        ]
        + FOOT_2,
    ),
    (
        "https://science.example.net/why-the-sky-is-blue",
        [
            "Why is the sky blue?",
            "Sunlight looks white, but it is a mixture of all the colours of the rainbow.",
            "When light enters the atmosphere, it meets molecules of nitrogen and oxygen that are much smaller than its wavelength.",
            "These molecules scatter short wavelengths, such as blue and violet, much more strongly than long wavelengths, such as red.",
            "Our eyes are more sensitive to blue than to violet, so the scattered light that reaches us from every direction looks blue.",
            "At sunset the light travels through more air before it reaches us, most of the blue is scattered away, and the sky turns orange and red.",
        ],
    ),
    (
        "https://history.example.net/the-printing-press",
        NAV
        + [
            "The printing press and the spread of books",
            "Before the printing press, books were copied by hand, and a single copy could take a scribe many months to finish.",
            "Around the middle of the fifteenth century, printers in Europe began to use movable metal type, which could be arranged, inked and reused.",
            "Within a few decades, printing shops had opened in hundreds of towns, and the price of books fell sharply.",
            "Cheaper books helped more people learn to read, and new ideas in science and religion travelled faster than ever before.",
        ],
    ),
    (
        "https://cheap-deals.example.biz/offers",
        [
            "best cheap deals buy now cheap price discount offer best price online shop cheap",
            "cheap shoes cheap bags cheap phones cheap watches buy cheap free shipping best deals",
            "discount discount discount best offer today only click here buy now limited offer",
            "top deals cheap cheap cheap online shopping best price guaranteed order now cheap",
            "buy buy buy sale sale sale lowest price lowest price best seller hot deals now",
        ],
    ),
    # the bread article again, copied by an aggregator with its own menu and footer
    (
        "https://recipes-aggregator.example.com/copy/bread",
        ["Recipes", "Popular", "New"] + BREAD + ["Share this page", "Report a problem"],
    ),
    (
        "https://kitchen.example.com/404",
        NAV + ["Page not found.", "Sorry, this page does not exist."] + FOOT,
    ),
    (
        "https://nachrichten.example.de/fahrrad",
        [
            "Mit dem Fahrrad entlang des Flusses",
            "Der Radweg folgt dem Fluss fast achtzig Kilometer weit, von den Bergen im Norden bis zum alten Hafen im Süden.",
            "Die meisten Abschnitte sind flach und asphaltiert, deshalb eignet sich die Strecke gut für Familien mit Kindern.",
            "In den Dörfern am Weg gibt es Cafés, Werkstätten für Fahrräder und einfache Zimmer für die Nacht.",
            "Im Herbst färben sich die Bäume am Ufer gelb und rot, und der Nebel liegt morgens oft bis Mittag über den Feldern.",
        ]
        + ["Impressum", "Datenschutz"],
    ),
    (
        "https://cuisine.example.fr/pain",
        [
            "Comment faire son pain à la maison",
            "Pour faire du pain, il suffit de farine, d'eau, de sel et de levure, mais le résultat dépend surtout de la patience.",
            "Mélangez d'abord la farine et l'eau, puis laissez reposer la pâte pendant une demi-heure avant d'ajouter le sel et la levure.",
            "Pétrissez la pâte jusqu'à ce qu'elle soit lisse et élastique, puis laissez-la lever dans un endroit tiède.",
            "Faites cuire le pain dans un four très chaud pendant environ quarante minutes, jusqu'à ce que la croûte soit bien dorée.",
        ],
    ),
    (
        "https://jardin.example.es/tomates",
        [
            "Cómo cultivar tomates en un jardín pequeño",
            "Los tomates necesitan al menos seis horas de sol directo al día, así que elija el rincón más luminoso del jardín.",
            "Riegue las plantas por la mañana y evite mojar las hojas, porque así se previenen muchas enfermedades.",
            "Recoja los frutos cuando tengan todo su color y guárdelos a temperatura ambiente y no en la nevera.",
        ],
    ),
    (
        "https://tea.example.cn/green-tea",
        [
            "绿茶的冲泡方法",
            "冲泡绿茶时，水温不宜过高，一般八十度左右最为合适。",
            "先用少量热水温杯，再放入茶叶，然后缓缓注水，让茶叶慢慢舒展。",
            "第一泡大约一分钟即可出汤，之后每一泡可以适当延长时间。",
        ],
    ),
]


def record(headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode("utf-8") + body + b"\r\n\r\n"


def rid(seed: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, seed)}>"


def main() -> None:
    import base64

    info = (
        b"software: llama-data scripts/make_demo_commoncrawl.py\r\n"
        b"description: demo pages written for llama-data, not crawled\r\n"
        b"isPartOf: llama-data-demo\r\n"
    )
    members = [
        record(
            [
                ("WARC-Type", "warcinfo"),
                ("WARC-Date", "2023-06-01T00:00:00Z"),
                ("WARC-Filename", OUT.name),
                ("WARC-Record-ID", rid("warcinfo")),
                ("Content-Type", "application/warc-fields"),
            ],
            info,
        )
    ]
    for i, (url, lines) in enumerate(PAGES):
        body = "\n".join(lines).encode("utf-8")
        digest = base64.b32encode(hashlib.sha1(body).digest()).decode()
        members.append(
            record(
                [
                    ("WARC-Type", "conversion"),
                    ("WARC-Target-URI", url),
                    ("WARC-Date", f"2023-06-01T00:{i:02d}:00Z"),
                    ("WARC-Record-ID", rid(url)),
                    ("WARC-Refers-To", rid("response:" + url)),
                    ("WARC-Block-Digest", f"sha1:{digest}"),
                    ("Content-Type", "text/plain"),
                ],
                body,
            )
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same bytes on every run
    OUT.write_bytes(b"".join(gzip.compress(m, mtime=0) for m in members))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(PAGES)} pages)")


if __name__ == "__main__":
    main()
