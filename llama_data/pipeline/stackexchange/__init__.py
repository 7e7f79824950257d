"""Stack Exchange: Posts.xml rows (from the site's .7z or extracted) to one document per question.

The dump has one `<row .../>` per post. Rows are cut out of the byte stream and parsed one at a
time (a bad row costs that row), with entity resolution and DTDs refused (`reader`). Each post
becomes a Document whose text is its body converted from HTML (`html`); a question's document is
assembled from its post and its answers, which a Beam job brings together by question id through
a shuffle (`steps`: `assemble_question` is the per-question function; `group_posts` is the
in-memory form for tests and small inputs). Answers are sorted by their numeric score, highest
first, ties by answer id: as strings "9" > "10", the mistake RedPajama made. `schema` names the
stage's columns and `download` fetches a site's archive from archive.org.

Formats: the 2017-2023 dumps (`Tags="&lt;a&gt;&lt;b&gt;"`, no licence attribute) and the 2024
dumps (`ContentLicense`, `Tags="|a|b|"`, UTF-8 BOM).
"""
