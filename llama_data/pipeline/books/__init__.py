"""Books: Project Gutenberg and Books3, licence stripping, and book-level near-dedup.

`reader` reads Gutenberg plain-text files (cutting the licence header and footer) and Books3
JSON lines; `steps` drops books with nothing left; `dedup` is the near-dedup (MinHash, LSH
Ensemble candidates, verified overlaps, the keeper rule); `schema` names the stage's columns and
`download` fetches Gutenberg books.
"""
