"""Write the demo's Wikipedia dumps and Stack Exchange archives (texts written for this project).

    python scripts/make_demo_wiki_se.py      # rewrites llama_data/demo/{wikipedia,stackexchange}/

Formats are the publishers': a MediaWiki export-0.10 multistream dump with its
`-index.txt.bz2` (enwiki), a single-stream `pages-articles.xml.bz2` (ukwiki), a site's `.7z`
holding `Posts.xml` in the 2017-2023 format, an extracted `Posts.xml` in the 2024 format (BOM,
`ContentLicense`, `|tag|` tags), and a meta site archive (skipped by default).
"""

from __future__ import annotations

import bz2
import codecs
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import py7zr

DEMO = Path(__file__).resolve().parents[1] / "llama_data" / "demo"

EN_ARTICLES = {
    "Sourdough": """{{Short description|Bread leavened by wild yeast}}
{{Infobox food
| name = Sourdough
| type = Bread
| main_ingredient = Flour, water, salt
}}
'''Sourdough''' is a [[bread]] leavened by a culture of wild [[yeast]] and [[lactic acid bacteria]]
rather than by baker's yeast.<ref name="baker">{{cite book |title=A Baker's Notes |year=2001}}</ref>
The bacteria give the bread its mildly sour taste and help it keep for several days.<ref>Field notes, p. 12.</ref>
<!-- Please discuss large changes on the talk page first. -->
__NOTOC__
[[File:Sourdough loaf.jpg|thumb|right|A round loaf with a [[crust|dark crust]]]]

== Starter ==
A ''starter'' is a mixture of flour and water in which the culture lives. It is fed
regularly with fresh flour and water.{{citation needed|date=March 2024}}
* A firm starter holds about half as much water as flour.
* A liquid starter holds as much water as flour.
# Discard part of the starter.
# Feed it and wait until it doubles.

=== Hydration ===
Bakers describe a dough by its [[Baker's percentage|hydration]], the weight of water per weight of flour.

{| class="wikitable"
|+ Typical hydration
! Bread !! Hydration
|-
| Bagel || 55%
|-
| Sourdough || 75%
|}

== See also ==
* [[Rye bread]]
* [[Fermentation in food processing|Fermentation]]

== References ==
{{Reflist}}

[[Category:Breads]]
[[Category:Fermented foods]]
[[de:Sauerteig]]
[[uk:Закваска]]
""",
    "Honey bee": """{{Taxobox | name = Honey bee | genus = Apis}}
The '''honey bee''' is a flying [[insect]] of the genus ''Apis'' that makes [[honey]] and stores it
in a wax comb.<ref>{{cite journal |title=Comb building |journal=Insects |year=1998}}</ref>

== Colony ==
A colony has one queen, a few hundred drones and thousands of workers.
Workers take on tasks in an order that follows their age:
* cleaning cells,
* feeding larvae,
* building comb,
* foraging for [[nectar]] and [[pollen]].

== Dance ==
A forager that found food tells the others where it is with a ''waggle dance''. The angle of the
dance gives the direction and its length gives the distance.<ref name="dance"/>

<gallery>
Bee on flower.jpg|A worker on a flower
Comb.jpg|Wax comb
</gallery>

[[Category:Bees]]
""",
    "Kombucha": """'''Kombucha''' is a fermented, lightly fizzy drink made from sweetened [[tea]].
It is made with a '''SCOBY''' ({{lang|en|symbiotic culture of bacteria and yeast}}).

== Making ==
Sweet tea is left with the culture for one to four weeks. A second fermentation in closed bottles
makes the drink fizzy.
<math>C_6H_{12}O_6 \\rightarrow 2\\,C_2H_5OH + 2\\,CO_2</math>

== Safety ==
Home brewers are advised to keep all equipment clean.{{Medical citation needed}}

[[Category:Fermented drinks]]
""",
    "Cheese": """{{Short description|Dairy product}}
'''Cheese''' is a food made from [[milk]] by curdling it with [[rennet]] or an acid, draining
the whey and often ageing the curds.<ref>{{cite book |title=Dairy Science |year=2003}}</ref> There
are hundreds of kinds, which differ in the milk used, the length of ageing and the moulds or
bacteria added.

== Making ==
Milk is warmed and a starter culture is added. Once the milk has set, the curd is cut into small
pieces, which lets the whey run off. The curds are then salted, pressed into moulds and left to
ripen in a cool, damp room. A hard cheese may ripen for a year or more, while a fresh cheese is
eaten within days.

== Kinds ==
* Fresh cheeses, such as [[cottage cheese]], are not aged.
* Soft cheeses ripen from the outside in.
* Hard cheeses are pressed firmly and aged for a long time.
* Blue cheeses have veins of [[Penicillium|mould]] running through them.

== Storage ==
Cheese keeps best wrapped in paper in a cool place. Plastic wrap traps moisture and can spoil
the rind.{{citation needed|date=January 2024}}

[[Category:Cheeses]]
[[fr:Fromage]]
""",
    "Vinegar": """'''Vinegar''' is a sour liquid made when [[acetic acid bacteria]] turn the
alcohol in wine, cider or beer into [[acetic acid]].<ref name="food">Food chemistry notes, ch. 4.</ref>
It has been used for thousands of years to flavour and to preserve food.

== Production ==
In the slow method, the liquid is left in open barrels for weeks or months while a film of
bacteria, called the ''mother of vinegar'', grows on its surface. Faster methods pump air through
the liquid so that the bacteria work more quickly. Most table vinegar holds about five parts of
acid in a hundred.

== Uses ==
Vinegar is used in salad dressings, sauces and [[pickling]]. Because few germs can live in an
acid liquid, pickled vegetables keep for many months. Some people also use diluted vinegar to
clean glass and to remove hard water stains.

[[Category:Condiments]]
""",
    "Bicycle": """{{Infobox vehicle | name = Bicycle | wheels = 2}}
A '''bicycle''' is a vehicle with two wheels, one behind the other, that is moved by pedals
turned by the rider's feet.<ref>{{cite web |url=https://example.org/bikes |title=Bikes}}</ref>
The rider steers with handlebars attached to the front wheel.

== History ==
Early machines without pedals were pushed along with the feet. Pedals were later fixed to the
front wheel, and in the 1880s the chain drive to the rear wheel made the modern "safety bicycle"
possible. Air-filled tyres soon made riding far more comfortable.

== Parts ==
The main parts are the frame, the wheels, the saddle, the handlebars, the brakes and the drive
train, which is made of the pedals, the chain and the gears. Gears let a rider keep a steady
pace on hills and on flat roads alike.

== Health ==
Riding a bicycle is good exercise for the heart and the legs, and many people ride to work
every day instead of driving.

[[Category:Vehicles]]
""",
    "Compost": """'''Compost''' is decayed plant and food waste that gardeners add to soil to
make it richer.<ref>Garden handbook, p. 40.</ref> Making compost returns nutrients to the ground
and keeps waste out of landfills.

== How it works ==
Worms, fungi and bacteria break down the waste. They need air, water and a mix of "green"
material, such as grass cuttings and vegetable peels, and "brown" material, such as dry leaves
and straw. A heap that is turned every few weeks stays warm inside and breaks down faster.

== What to avoid ==
Meat, fish and dairy foods attract pests and are best kept out of a garden heap. Diseased plants
should also be left out, since the heap may not get hot enough to kill the disease.

{| class="wikitable"
! Green !! Brown
|-
| grass || leaves
|-
| peels || straw
|}

[[Category:Gardening]]
""",
    "Mercury": """'''Mercury''' may refer to:
* [[Mercury (planet)]], the planet closest to the Sun
* [[Mercury (element)]], a chemical element
{{disambiguation}}
""",
    "Bread": """#REDIRECT [[Bread (food)]]""",
}

UK_ARTICLES = {
    "Закваска": """'''Закваска''' — суміш [[борошно|борошна]] і води, у якій живуть дикі [[дріжджі]] та
молочнокислі бактерії.<ref>Записки пекаря, с. 3.</ref>
[[Файл:Закваска.jpg|міні|Закваска в банці]]

== Використання ==
Закваску використовують для випікання житнього та пшеничного хліба.
* Житня закваска
* Пшенична закваска

== Примітки ==
{{reflist}}

[[Категорія:Хліб]]
""",
    "Мед": """{{Інфобокс їжа | назва = Мед}}
'''Мед''' — солодкий продукт, який [[Бджола медоносна|бджоли]] виробляють з нектару квітів.
Мед довго зберігається, бо містить мало води.

== Види ==
Розрізняють квітковий і падевий мед.
""",
}


def page_xml(page_id: int, title: str, text: str, ns: int = 0) -> str:
    redirect = ""
    if text.upper().startswith("#REDIRECT") or text.startswith("#ПЕРЕНАПРАВЛЕННЯ"):
        target = text.split("[[", 1)[1].split("]]", 1)[0]
        redirect = f"    <redirect title={quoteattr(target)} />\n"
    return (
        "  <page>\n"
        f"    <title>{escape(title)}</title>\n"
        f"    <ns>{ns}</ns>\n"
        f"    <id>{page_id}</id>\n"
        f"{redirect}"
        "    <revision>\n"
        f"      <id>{page_id * 1000 + 7}</id>\n"
        f"      <parentid>{page_id * 1000 + 3}</parentid>\n"
        "      <timestamp>2024-03-01T09:30:00Z</timestamp>\n"
        "      <contributor>\n        <username>DemoEditor</username>\n        <id>42</id>\n"
        "      </contributor>\n"
        "      <model>wikitext</model>\n"
        "      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
        "      <sha1>0000000000000000000000000000000</sha1>\n"
        "    </revision>\n"
        "  </page>\n"
    )


def header(db: str, lang: str, sitename: str, ns: dict[int, str]) -> str:
    names = "".join(
        f'      <namespace key="{k}" case="first-letter">{escape(v)}</namespace>\n'
        if v
        else f'      <namespace key="{k}" case="first-letter" />\n'
        for k, v in ns.items()
    )
    return (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.10/ '
        'http://www.mediawiki.org/xml/export-0.10.xsd" version="0.10" '
        f'xml:lang="{lang}">\n'
        "  <siteinfo>\n"
        f"    <sitename>{escape(sitename)}</sitename>\n"
        f"    <dbname>{db}</dbname>\n"
        f"    <base>https://{lang}.wikipedia.org/wiki/Main_Page</base>\n"
        "    <generator>MediaWiki 1.42.0-wmf.20</generator>\n"
        "    <case>first-letter</case>\n"
        f"    <namespaces>\n{names}    </namespaces>\n"
        "  </siteinfo>\n"
    )


EN_NS = {0: "", 1: "Talk", 6: "File", 10: "Template", 14: "Category"}
UK_NS = {0: "", 1: "Обговорення", 6: "Файл", 10: "Шаблон", 14: "Категорія"}


def write_wikipedia(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*"):
        old.unlink()
    pages = [page_xml(100 + i, t, x) for i, (t, x) in enumerate(EN_ARTICLES.items())]
    pages.append(page_xml(200, "Template:Reflist", "<references />", ns=10))
    pages.append(page_xml(201, "Talk:Sourdough", "Should we add a recipe? --~~~~", ns=1))
    date = "20240301"
    name = f"enwiki-{date}-pages-articles-multistream.xml.bz2"
    streams = [bz2.compress(header("enwiki", "en", "Wikipedia", EN_NS).encode())]
    offset = len(streams[0])
    index: list[str] = []
    per_stream = 2  # Wikimedia puts 100 pages in a stream; 2 keeps the demo splittable
    for i in range(0, len(pages), per_stream):
        group = pages[i : i + per_stream]
        for p in group:
            pid = p.split("<id>", 1)[1].split("<", 1)[0]
            title = p.split("<title>", 1)[1].split("</title>", 1)[0]
            index.append(f"{offset}:{pid}:{title}\n")
        data = bz2.compress("".join(group).encode())
        streams.append(data)
        offset += len(data)
    streams.append(bz2.compress(b"</mediawiki>\n"))
    (folder / name).write_bytes(b"".join(streams))
    idx = name.replace("-multistream", "-multistream-index").replace(".xml", ".txt")
    (folder / idx).write_bytes(bz2.compress("".join(index).encode()))

    uk = [page_xml(300 + i, t, x) for i, (t, x) in enumerate(UK_ARTICLES.items())]
    xml = header("ukwiki", "uk", "Вікіпедія", UK_NS) + "".join(uk) + "</mediawiki>\n"
    (folder / f"ukwiki-{date}-pages-articles.xml.bz2").write_bytes(bz2.compress(xml.encode()))


def row(**attrs: object) -> str:
    parts = " ".join(f"{k}={quoteattr(str(v), {chr(10): '&#xA;'})}" for k, v in attrs.items())
    return f"  <row {parts} />\n"


def posts(rows: list[str], bom: bool = False) -> bytes:
    text = '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "".join(rows) + "</posts>"
    return (codecs.BOM_UTF8 if bom else b"") + text.encode()


HOMEBREW = [
    row(Id=1, PostTypeId=1, AcceptedAnswerId=3, CreationDate="2010-11-02T18:20:11.310", Score=12,
        ViewCount=410, Title="How long should I leave an ale in the primary fermenter?",
        Tags="<ale><fermentation>", AnswerCount=3, CommentCount=1,
        Body="<p>My kit says <em>seven days</em>, a friend says two weeks. Which is right?</p>\n"),
    row(Id=2, PostTypeId=2, ParentId=1, CreationDate="2010-11-02T19:01:44.120", Score=9,
        Body="<p>Go by gravity, not by the calendar:</p>\n<ol>\n<li>Take a reading.</li>\n"
             "<li>Wait two days.</li>\n<li>Take another; if it has not moved, fermentation is done.</li>\n</ol>\n"),
    row(Id=3, PostTypeId=2, ParentId=1, CreationDate="2010-11-03T08:15:00.000", Score=10,
        Body="<p>Two weeks is a safe default. The yeast cleans up by-products after the main "
             "fermentation &amp; the beer clears.</p>\n"),
    row(Id=4, PostTypeId=2, ParentId=1, CreationDate="2019-01-20T10:00:00.000", Score=-1,
        Body="<p>Seven days, always.</p>\n"),
    row(Id=5, PostTypeId=1, CreationDate="2015-06-11T12:00:00.000", Score=4, ViewCount=90,
        Title="Can I reuse yeast from a previous batch?", Tags="<yeast>", AnswerCount=2,
        Body="<p>I have a thick layer of yeast at the bottom of my fermenter.</p>\n"),
    row(Id=6, PostTypeId=2, ParentId=5, CreationDate="2015-06-11T13:00:00.000", Score=2,
        Body="<p>Yes. Pour a little of the slurry into the next batch:</p>\n"
             "<pre><code>slurry_ml = batch_litres * 10\n</code></pre>\n"),
    row(Id=7, PostTypeId=2, ParentId=5, CreationDate="2015-06-12T09:00:00.000", Score=2,
        Body="<p>Only for a few generations, and keep it cold in between.</p>\n"),
    row(Id=8, PostTypeId=4, CreationDate="2012-01-01T00:00:00.000", Score=0,
        Body="<p>Questions about yeast.</p>"),
    row(Id=9, PostTypeId=2, ParentId=5, CreationDate="2016-01-01T00:00:00.000", Score=0,
        Body="<p>It depends on the <b>strain <a href='http://example.org"),  # cut-off HTML
]  # fmt: skip

GARDENING = [
    row(Id=21, PostTypeId=1, CreationDate="2024-02-01T08:00:00.000", Score=5,
        Title="Why do my tomato leaves curl?", Tags="|tomatoes|leaves|", AnswerCount=2,
        ContentLicense="CC BY-SA 4.0",
        Body="<p>The lower leaves curl upwards after hot days.</p>\n"),
    row(Id=22, PostTypeId=2, ParentId=21, CreationDate="2024-02-01T09:00:00.000", Score=3,
        ContentLicense="CC BY-SA 4.0",
        Body="<p>Usually heat stress. Check:</p>\n<ul>\n<li>watering in the morning</li>\n"
             "<li>mulch around the stem</li>\n</ul>\n"),
    row(Id=23, PostTypeId=2, ParentId=21, CreationDate="2024-02-02T09:00:00.000", Score=11,
        ContentLicense="CC BY-SA 4.0",
        Body="<p>Leaf roll is harmless; the plant protects itself from losing water.</p>\n"),
]  # fmt: skip

META = [
    row(Id=1, PostTypeId=1, CreationDate="2011-01-01T00:00:00.000", Score=3,
        Title="Should we allow recipe requests?", Tags="<discussion>", AnswerCount=0,
        Body="<p>A question about the site itself.</p>"),
]  # fmt: skip


def write_stackexchange(folder: Path) -> None:
    if folder.exists():
        for old in sorted(folder.rglob("*"), reverse=True):
            old.unlink() if old.is_file() else old.rmdir()
    folder.mkdir(parents=True, exist_ok=True)
    with py7zr.SevenZipFile(folder / "homebrew.stackexchange.com.7z", "w") as z:
        z.writestr(posts(HOMEBREW), "Posts.xml")
        z.writestr(b'<?xml version="1.0" encoding="utf-8"?>\n<users>\n</users>', "Users.xml")
    with py7zr.SevenZipFile(folder / "homebrew.meta.stackexchange.com.7z", "w") as z:
        z.writestr(posts(META), "Posts.xml")
    site = folder / "gardening.stackexchange.com"
    site.mkdir()
    (site / "Posts.xml").write_bytes(posts(GARDENING, bom=True))


if __name__ == "__main__":
    write_wikipedia(DEMO / "wikipedia")
    write_stackexchange(DEMO / "stackexchange")
    for p in sorted((DEMO / "wikipedia").rglob("*")) + sorted((DEMO / "stackexchange").rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(DEMO)}  {p.stat().st_size:,} bytes")
