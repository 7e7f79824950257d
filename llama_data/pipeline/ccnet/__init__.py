"""The CCNet method (Wenzek et al., 2020) as engine-free parts, composed by beam_jobs/ccnet.py.

Order of a document's journey: read (pipeline/warc.py) -> line dedup (`lines`) -> language id
(`langid`) -> perplexity (`perplexity`) -> head/middle/tail bucket (`buckets`) -> exact document
dedup and the length filter (`filters`). `train_lm` builds the perplexity models from documents;
`download` fetches a snapshot's WET files and `schema` names the stage's columns.
"""
