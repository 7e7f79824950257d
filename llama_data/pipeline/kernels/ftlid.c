/* fastText supervised prediction (k=1), for lid.176 and models like it: the same label and the
 * same probability, bit for bit, as fastText 0.9.x's `predict`, at a fraction of its cost.
 *
 * Why: lid.176 is quantized and pruned; fastText looks every character n-gram of every word up
 * in a `std::unordered_map` of the kept n-grams (`Dictionary::pushHash`), twice, and that lookup
 * was 56% of the language-id step, itself the largest cost of the ccnet stage. Here the kept
 * n-grams are an open-addressing table that fits in L2, n-gram hashes are extended byte by byte
 * instead of rebuilding each n-gram string, and each input row is dequantized once at load.
 *
 * Exactness: every floating-point operation fastText performs is performed here, on the same
 * operands, in the same order, in float (double where fastText's C++ promotes to double):
 * the averaged input rows (`QuantMatrix::addRowToVector` / `DenseMatrix::averageRowsToVector`),
 * the hierarchical softmax's depth-first search with its pruning and its tie rule, `std_log`,
 * and `exp` of the best score. Dequantizing a row at load computes `norm * centroid[d]` once;
 * fastText computes the same float product on every use. Compiled without -ffast-math and with
 * -ffp-contract=off, so nothing is reassociated or fused. `tests/test_ftlid_kernel.py` holds the
 * two equal on the corpus and on models trained by fastText itself (dense, quantized, pruned,
 * word n-grams).
 *
 * What is not supported raises NotImplementedError at load, and the caller uses fastText:
 * unsupervised models, losses other than hierarchical softmax, file versions other than 12.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FT_MAGIC 793712314
#define FT_VERSION 12
#define MODEL_SUP 3
#define LOSS_HS 1
#define KSUB 256
#define TYPE_WORD 0
#define TYPE_LABEL 1

static const char EOS[] = "</s>";
static const char LABEL_PREFIX[] = "__label__";

typedef struct {
    int32_t dim, nsubq, dsub, lastdsub;
    float *centroids; /* dim * KSUB */
} PQ;

typedef struct {
    PyObject_HEAD
    int32_t dim, word_ngrams, bucket, minn, maxn;
    int32_t size, nwords, nlabels;
    int64_t prune_size; /* -1: not pruned */
    /* dictionary */
    char *word_data;       /* all entries' bytes, back to back */
    int64_t *word_off;     /* size + 1 */
    int8_t *types;
    int32_t *wtab;         /* open addressing over entries, -1 = empty */
    uint32_t *wtab_hash;
    uint32_t wmask;
    int32_t *sub_off;      /* size + 1 */
    int32_t *subs;         /* each entry's input rows: itself, then its kept n-grams */
    int32_t eos;           /* entry of "</s>", or -1 */
    /* kept n-grams: bucket -> row offset past nwords */
    int32_t *ptab_key, *ptab_val;
    uint32_t pmask;
    uint64_t *pbits;       /* bucket -> kept?, one bit each: most n-grams are not kept */
    /* input rows, dequantized */
    int64_t nrows;
    float *rows;
    int dense_input;
    /* output rows (raw centroids when quantized, times out_alpha after the dot) */
    int64_t out_m;
    float *out_rows;
    float *out_alpha;      /* NULL when dense */
    /* hierarchical softmax tree */
    int32_t osz;
    int32_t *left, *right;
    PyObject *labels;      /* tuple of str */
    /* scratch */
    int32_t *ids, *hashes;
    Py_ssize_t ids_cap, hashes_cap;
    char *scratch;
    Py_ssize_t scratch_cap;
} Model;

/* ---- reading the file ------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} Reader;

static void rd(Reader *r, void *dst, size_t n) {
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p, n);
    r->p += n;
}

static int32_t rd_i32(Reader *r) { int32_t v; rd(r, &v, 4); return v; }
static int64_t rd_i64(Reader *r) { int64_t v; rd(r, &v, 8); return v; }
static uint8_t rd_u8(Reader *r) { uint8_t v; rd(r, &v, 1); return v; }

static int read_pq(Reader *r, PQ *pq) {
    pq->dim = rd_i32(r);
    pq->nsubq = rd_i32(r);
    pq->dsub = rd_i32(r);
    pq->lastdsub = rd_i32(r);
    if (r->bad || pq->dim <= 0 || pq->dim > 65536 || pq->nsubq <= 0 || pq->dsub <= 0 ||
        pq->lastdsub <= 0 || (int64_t)(pq->nsubq - 1) * pq->dsub + pq->lastdsub != pq->dim)
        return -1;
    size_t n = (size_t)pq->dim * KSUB;
    if ((size_t)(r->end - r->p) < n * sizeof(float)) return -1;
    pq->centroids = malloc(n * sizeof(float));
    if (!pq->centroids) return -1;
    rd(r, pq->centroids, n * sizeof(float));
    return r->bad ? -1 : 0;
}

/* ProductQuantizer::get_centroids */
static const float *centroid(const PQ *pq, int32_t m, uint8_t i) {
    if (m == pq->nsubq - 1) return &pq->centroids[(size_t)m * KSUB * pq->dsub + (size_t)i * pq->lastdsub];
    return &pq->centroids[((size_t)m * KSUB + i) * pq->dsub];
}

/* A QuantMatrix: each row's centroids written out, and its norm. With `alpha_out` NULL (the input
 * matrix) each row is scaled by its norm; else (the output matrix) rows stay raw and the norms are
 * returned, since QuantMatrix::dotRow multiplies the finished dot product by the norm. */
static int read_quant(Reader *r, int64_t *m_out, int32_t dim, float **rows_out, float **alpha_out) {
    PQ pq = {0}, npq = {0};
    int ok = -1;
    uint8_t *codes = NULL, *norm_codes = NULL;
    float *rows = NULL, *alpha = NULL;
    int qnorm = rd_u8(r);
    int64_t m = rd_i64(r), n = rd_i64(r);
    int32_t codesize = rd_i32(r);
    if (r->bad || m <= 0 || n != dim || codesize < 0 || (size_t)(r->end - r->p) < (size_t)codesize)
        goto done;
    codes = malloc((size_t)codesize + 1);
    if (!codes) goto done;
    rd(r, codes, (size_t)codesize);
    if (read_pq(r, &pq) < 0 || pq.dim != dim || (int64_t)codesize != m * pq.nsubq) goto done;
    if (qnorm) {
        if ((size_t)(r->end - r->p) < (size_t)m) goto done;
        norm_codes = malloc((size_t)m);
        if (!norm_codes) goto done;
        rd(r, norm_codes, (size_t)m);
        if (read_pq(r, &npq) < 0 || npq.dim != 1 || npq.nsubq != 1) goto done;
    }
    rows = malloc((size_t)m * dim * sizeof(float));
    alpha = malloc((size_t)m * sizeof(float));
    if (!rows || !alpha) goto done;
    for (int64_t i = 0; i < m; i++) {
        float norm = 1;
        if (qnorm) norm = centroid(&npq, 0, norm_codes[i])[0];
        alpha[i] = norm;
        const uint8_t *code = codes + (size_t)pq.nsubq * i;
        float *row = rows + (size_t)i * dim;
        int32_t d = pq.dsub;
        for (int32_t k = 0; k < pq.nsubq; k++) {
            const float *c = centroid(&pq, k, code[k]);
            if (k == pq.nsubq - 1) d = pq.lastdsub;
            for (int32_t j = 0; j < d; j++) row[k * pq.dsub + j] = alpha_out ? c[j] : norm * c[j];
        }
    }
    *m_out = m;
    *rows_out = rows;
    rows = NULL;
    if (alpha_out) {
        *alpha_out = alpha;
        alpha = NULL;
    }
    ok = 0;
done:
    free(codes);
    free(norm_codes);
    free(pq.centroids);
    free(npq.centroids);
    free(rows);
    free(alpha);
    return ok;
}

static int read_dense(Reader *r, int64_t *m_out, int32_t dim, float **rows_out) {
    int64_t m = rd_i64(r), n = rd_i64(r);
    if (r->bad || m <= 0 || n != dim || (size_t)(r->end - r->p) / sizeof(float) / (size_t)dim < (size_t)m)
        return -1;
    float *rows = malloc((size_t)m * dim * sizeof(float));
    if (!rows) return -1;
    rd(r, rows, (size_t)m * dim * sizeof(float));
    *m_out = m;
    *rows_out = rows;
    return 0;
}

/* ---- dictionary ----------------------------------------------------------------------------- */

/* Dictionary::hash: FNV-1a over signed chars, as every released fastText model was trained. */
static inline uint32_t fnv_extend(uint32_t h, uint8_t c) { return (h ^ (uint32_t)(int8_t)c) * 16777619u; }

static uint32_t fnv(const char *s, Py_ssize_t n) {
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) h = fnv_extend(h, (uint8_t)s[i]);
    return h;
}

static int32_t find_word(const Model *M, const char *w, Py_ssize_t n, uint32_t h) {
    uint32_t i = h & M->wmask;
    for (;;) {
        int32_t e = M->wtab[i];
        if (e < 0) return -1;
        if (M->wtab_hash[i] == h) {
            int64_t len = M->word_off[e + 1] - M->word_off[e];
            if (len == n && memcmp(M->word_data + M->word_off[e], w, (size_t)n) == 0) return e;
        }
        i = (i + 1) & M->wmask;
    }
}

static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static int32_t prune_lookup(const Model *M, int32_t id) {
    if (!((M->pbits[(uint32_t)id >> 6] >> (id & 63)) & 1)) return -1;
    uint32_t i = mix32((uint32_t)id) & M->pmask;
    for (;;) {
        int32_t k = M->ptab_key[i];
        if (k == id) return M->ptab_val[i];
        if (k < 0) return -1;
        i = (i + 1) & M->pmask;
    }
}

typedef struct {
    int32_t *v;
    Py_ssize_t n, cap;
} IntVec;

static int push(IntVec *a, int32_t x) {
    if (a->n == a->cap) {
        Py_ssize_t cap = a->cap ? a->cap * 2 : 256;
        int32_t *v = realloc(a->v, (size_t)cap * sizeof(int32_t));
        if (!v) return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Dictionary::pushHash */
static int push_hash(const Model *M, IntVec *out, int32_t id) {
    if (M->prune_size == 0 || id < 0) return 0;
    if (M->prune_size > 0) {
        id = prune_lookup(M, id);
        if (id < 0) return 0;
    }
    return push(out, M->nwords + id);
}

/* Dictionary::computeSubwords over `w` = "<" word ">" */
static int compute_subwords(const Model *M, const char *w, Py_ssize_t n, IntVec *out) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((w[i] & 0xC0) == 0x80) continue;
        uint32_t h = 2166136261u;
        Py_ssize_t j = i;
        for (int32_t len = 1; j < n && len <= M->maxn; len++) {
            h = fnv_extend(h, (uint8_t)w[j++]);
            while (j < n && (w[j] & 0xC0) == 0x80) h = fnv_extend(h, (uint8_t)w[j++]);
            if (len >= M->minn && !(len == 1 && (i == 0 || j == n))) {
                if (push_hash(M, out, (int32_t)(h % (uint32_t)M->bucket)) < 0) return -1;
            }
        }
    }
    return 0;
}

static char *bracketed(Model *M, const char *w, Py_ssize_t n) {
    if (M->scratch_cap < n + 2) {
        Py_ssize_t cap = (n + 2) * 2;
        char *s = realloc(M->scratch, (size_t)cap);
        if (!s) return NULL;
        M->scratch = s;
        M->scratch_cap = cap;
    }
    M->scratch[0] = '<';
    memcpy(M->scratch + 1, w, (size_t)n);
    M->scratch[n + 1] = '>';
    return M->scratch;
}

/* ---- loading -------------------------------------------------------------------------------- */

static void model_free_tables(Model *M) {
    free(M->word_data); free(M->word_off); free(M->types); free(M->wtab); free(M->wtab_hash);
    free(M->sub_off); free(M->subs); free(M->ptab_key); free(M->ptab_val); free(M->pbits); free(M->rows);
    free(M->out_rows); free(M->out_alpha); free(M->left); free(M->right); free(M->ids);
    free(M->hashes); free(M->scratch);
    Py_CLEAR(M->labels);
}

static PyObject *unsupported(const char *what) {
    PyErr_Format(PyExc_NotImplementedError, "fastText model not handled by the kernel: %s", what);
    return NULL;
}

static PyObject *invalid(void) {
    PyErr_SetString(PyExc_ValueError, "not a valid fastText model file (truncated or inconsistent)");
    return NULL;
}

/* An open-addressing table of at least `min` slots (a power of two), every slot -1, and its
 * index mask; NULL when out of memory. */
static int32_t *new_table(uint64_t min, uint32_t *mask) {
    uint32_t cap = 16;
    while (cap < min) cap <<= 1;
    *mask = cap - 1;
    int32_t *t = malloc((size_t)cap * sizeof(int32_t));
    if (t) memset(t, 0xff, (size_t)cap * sizeof(int32_t));
    return t;
}

/* Builds everything from the file's bytes; 0, or -1 with an exception set. */
static int load(Model *M, const uint8_t *data, size_t len) {
    Reader r = {data, data + len, 0};
    int64_t *counts = NULL;
    int ret = -1;
    if (rd_i32(&r) != FT_MAGIC) { invalid(); goto done; }
    if (rd_i32(&r) != FT_VERSION) { unsupported("file version other than 12"); goto done; }
    M->dim = rd_i32(&r);
    (void)rd_i32(&r); /* ws */
    (void)rd_i32(&r); /* epoch */
    (void)rd_i32(&r); /* minCount */
    (void)rd_i32(&r); /* neg */
    M->word_ngrams = rd_i32(&r);
    int32_t loss = rd_i32(&r), model = rd_i32(&r);
    M->bucket = rd_i32(&r);
    M->minn = rd_i32(&r);
    M->maxn = rd_i32(&r);
    (void)rd_i32(&r); /* lrUpdateRate */
    (void)rd_i64(&r); /* t */
    if (r.bad || M->dim <= 0 || M->dim > 65536 || M->bucket < 0) { invalid(); goto done; }
    if (model != MODEL_SUP) { unsupported("not a supervised model"); goto done; }
    if (loss != LOSS_HS) { unsupported("loss other than hierarchical softmax"); goto done; }
    if (M->bucket == 0 && (M->maxn > 0 || M->word_ngrams > 1)) { invalid(); goto done; }

    /* Dictionary::load */
    M->size = rd_i32(&r);
    M->nwords = rd_i32(&r);
    M->nlabels = rd_i32(&r);
    (void)rd_i64(&r); /* ntokens */
    M->prune_size = rd_i64(&r);
    if (r.bad || M->size <= 0 || M->nwords < 0 || M->nlabels <= 0 ||
        (int64_t)M->nwords + M->nlabels != M->size || M->prune_size < -1 ||
        M->prune_size > (1 << 28)) { invalid(); goto done; }
    M->word_off = malloc(((size_t)M->size + 1) * sizeof(int64_t));
    M->types = malloc((size_t)M->size);
    M->word_data = malloc(len + 1);
    counts = malloc((size_t)M->size * sizeof(int64_t));
    if (!M->word_off || !M->types || !M->word_data || !counts) { PyErr_NoMemory(); goto done; }
    int64_t off = 0;
    M->eos = -1;
    for (int32_t i = 0; i < M->size; i++) {
        M->word_off[i] = off;
        const uint8_t *z = memchr(r.p, 0, (size_t)(r.end - r.p));
        if (!z) { invalid(); goto done; }
        size_t n = (size_t)(z - r.p);
        memcpy(M->word_data + off, r.p, n);
        if (n == sizeof(EOS) - 1 && memcmp(r.p, EOS, n) == 0 && M->eos < 0) M->eos = i;
        off += (int64_t)n;
        r.p = z + 1;
        counts[i] = rd_i64(&r);
        int8_t t = (int8_t)rd_u8(&r);
        if (r.bad || (t != TYPE_WORD && t != TYPE_LABEL)) { invalid(); goto done; }
        /* fastText sorts the dictionary by type: words, then labels (getCounts, getLabel) */
        if ((i < M->nwords) != (t == TYPE_WORD)) { unsupported("labels not after words"); goto done; }
        M->types[i] = t;
    }
    M->word_off[M->size] = off;

    /* the kept n-grams (pruneidx_): the last pair for a key wins, as in std::unordered_map[] */
    if (M->prune_size > 0) {
        M->ptab_key = new_table((uint64_t)M->prune_size * 3, &M->pmask);
        M->ptab_val = malloc(((size_t)M->pmask + 1) * sizeof(int32_t));
        M->pbits = calloc(((size_t)M->bucket >> 6) + 1, sizeof(uint64_t));
        if (!M->ptab_key || !M->ptab_val || !M->pbits) { PyErr_NoMemory(); goto done; }
        for (int64_t i = 0; i < M->prune_size; i++) {
            int32_t first = rd_i32(&r), second = rd_i32(&r);
            /* a key at or past `bucket` can never be looked up: n-gram ids are hash % bucket */
            if (r.bad || first < 0 || second < 0) { invalid(); goto done; }
            if (first >= M->bucket) continue;
            M->pbits[(uint32_t)first >> 6] |= (uint64_t)1 << (first & 63);
            uint32_t h = mix32((uint32_t)first) & M->pmask;
            while (M->ptab_key[h] >= 0 && M->ptab_key[h] != first) h = (h + 1) & M->pmask;
            M->ptab_key[h] = first;
            M->ptab_val[h] = second;
        }
    }

    /* the word table (Dictionary::find; any exact-match table gives the same entry) */
    {
        M->wtab = new_table((uint64_t)M->size * 2, &M->wmask);
        M->wtab_hash = malloc(((size_t)M->wmask + 1) * sizeof(uint32_t));
        if (!M->wtab || !M->wtab_hash) { PyErr_NoMemory(); goto done; }
        for (int32_t i = 0; i < M->size; i++) {
            const char *w = M->word_data + M->word_off[i];
            Py_ssize_t n = (Py_ssize_t)(M->word_off[i + 1] - M->word_off[i]);
            uint32_t h = fnv(w, n);
            if (find_word(M, w, n, h) >= 0) continue; /* a duplicate: the first is found */
            uint32_t k = h & M->wmask;
            while (M->wtab[k] >= 0) k = (k + 1) & M->wmask;
            M->wtab[k] = i;
            M->wtab_hash[k] = h;
        }
    }

    /* the input matrix */
    uint8_t quant_input = rd_u8(&r);
    if (quant_input) {
        if (read_quant(&r, &M->nrows, M->dim, &M->rows, NULL) < 0) { invalid(); goto done; }
        M->dense_input = 0;
    } else {
        if (M->prune_size >= 0) { invalid(); goto done; } /* fastText refuses it too */
        if (read_dense(&r, &M->nrows, M->dim, &M->rows) < 0) { invalid(); goto done; }
        M->dense_input = 1;
    }
    /* every row an input can name must exist */
    int64_t ngram_rows = M->prune_size >= 0 ? 0 : M->bucket;
    if (M->prune_size > 0) {
        for (uint32_t i = 0; i <= M->pmask; i++)
            if (M->ptab_key[i] >= 0 && M->ptab_val[i] + 1 > ngram_rows) ngram_rows = M->ptab_val[i] + 1;
    }
    if ((int64_t)M->nwords + ngram_rows > M->nrows) { invalid(); goto done; }

    /* the output matrix */
    uint8_t qout = rd_u8(&r);
    if (quant_input && qout) {
        if (read_quant(&r, &M->out_m, M->dim, &M->out_rows, &M->out_alpha) < 0) { invalid(); goto done; }
    } else {
        if (read_dense(&r, &M->out_m, M->dim, &M->out_rows) < 0) { invalid(); goto done; }
    }
    if (r.bad || M->out_m < M->nlabels - 1) { invalid(); goto done; }

    /* each entry's input rows (Dictionary::initNgrams, after the pruned table is read) */
    {
        IntVec subs = {0};
        M->sub_off = malloc(((size_t)M->size + 1) * sizeof(int32_t));
        if (!M->sub_off) { PyErr_NoMemory(); goto done; }
        for (int32_t i = 0; i < M->size; i++) {
            M->sub_off[i] = (int32_t)subs.n;
            if (push(&subs, i) < 0) { free(subs.v); PyErr_NoMemory(); goto done; }
            if (i != M->eos) {
                const char *w = M->word_data + M->word_off[i];
                Py_ssize_t n = (Py_ssize_t)(M->word_off[i + 1] - M->word_off[i]);
                char *b = bracketed(M, w, n);
                if (!b || compute_subwords(M, b, n + 2, &subs) < 0) { free(subs.v); PyErr_NoMemory(); goto done; }
            }
        }
        M->sub_off[M->size] = (int32_t)subs.n;
        M->subs = subs.v;
    }

    /* HierarchicalSoftmaxLoss::buildTree over the label counts */
    {
        int32_t osz = M->nlabels, nn = 2 * osz - 1;
        M->osz = osz;
        int64_t *count = malloc((size_t)nn * sizeof(int64_t));
        int32_t *parent = malloc((size_t)nn * sizeof(int32_t));
        M->left = malloc((size_t)nn * sizeof(int32_t));
        M->right = malloc((size_t)nn * sizeof(int32_t));
        if (!count || !parent || !M->left || !M->right) {
            free(count); free(parent); PyErr_NoMemory(); goto done;
        }
        for (int32_t i = 0; i < nn; i++) {
            parent[i] = M->left[i] = M->right[i] = -1;
            count[i] = (int64_t)1e15;
        }
        for (int32_t i = 0; i < osz; i++) count[i] = counts[M->nwords + i];
        int32_t leaf = osz - 1, node = osz;
        for (int32_t i = osz; i < nn; i++) {
            int32_t mini[2] = {0, 0};
            for (int j = 0; j < 2; j++) {
                if (leaf >= 0 && count[leaf] < count[node]) mini[j] = leaf--;
                else mini[j] = node++;
            }
            M->left[i] = mini[0];
            M->right[i] = mini[1];
            count[i] = count[mini[0]] + count[mini[1]];
            parent[mini[0]] = parent[mini[1]] = i;
        }
        free(count);
        free(parent);
    }

    M->labels = PyTuple_New(M->nlabels);
    if (!M->labels) goto done;
    for (int32_t i = 0; i < M->nlabels; i++) {
        int32_t e = M->nwords + i;
        PyObject *s = PyUnicode_DecodeUTF8(M->word_data + M->word_off[e],
                                           (Py_ssize_t)(M->word_off[e + 1] - M->word_off[e]), "strict");
        if (!s) goto done;
        PyTuple_SET_ITEM(M->labels, i, s);
    }
    ret = 0;
done:
    free(counts);
    return ret;
}

/* ---- prediction ------------------------------------------------------------------------------ */

static inline float std_log(float x) { return (float)log((double)x + 1e-5); }

typedef struct {
    int have;
    float score;
    int32_t label;
    int nan;
} Best;

static float out_dot(const Model *M, const float *x, int32_t row) {
    const float *w = M->out_rows + (size_t)row * M->dim;
    float d = 0.0f;
    for (int32_t j = 0; j < M->dim; j++) d += x[j] * w[j];
    if (M->out_alpha) d = d * M->out_alpha[row];
    return d;
}

/* HierarchicalSoftmaxLoss::dfs with k = 1: a leaf replaces the best when its score is not
 * lower (fastText's heap keeps the later of two equal scores). */
static void dfs(const Model *M, int32_t node, float score, float floor_, const float *x, Best *b) {
    if (score < floor_) return;
    if (b->have && score < b->score) return;
    if (M->left[node] == -1 && M->right[node] == -1) {
        b->have = 1;
        b->score = score;
        b->label = node;
        return;
    }
    float f = out_dot(M, x, node - M->osz);
    if (!M->out_alpha && isnan(f)) { /* DenseMatrix::dotRow throws; QuantMatrix's does not */
        b->nan = 1;
        return;
    }
    f = (float)(1.0 / (double)(1.0f + expf(-f)));
    dfs(M, M->left[node], score + std_log((float)(1.0 - (double)f)), floor_, x, b);
    dfs(M, M->right[node], score + std_log(f), floor_, x, b);
}

static int is_space(uint8_t c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0';
}

/* The input rows of one line (Dictionary::getLine, the text followed by "\n"). */
static int line_rows(Model *M, const char *s, Py_ssize_t n, IntVec *ids, IntVec *hashes) {
    Py_ssize_t i = 0;
    ids->n = hashes->n = 0;
    for (;;) {
        while (i < n && is_space((uint8_t)s[i])) i++;
        const char *tok;
        Py_ssize_t len;
        if (i >= n) {
            tok = EOS; /* the newline fastText's Python binding appends */
            len = sizeof(EOS) - 1;
        } else {
            Py_ssize_t start = i;
            while (i < n && !is_space((uint8_t)s[i])) i++;
            tok = s + start;
            len = i - start;
        }
        uint32_t h = fnv(tok, len);
        int32_t wid = find_word(M, tok, len, h);
        int is_eos = len == sizeof(EOS) - 1 && memcmp(tok, EOS, (size_t)len) == 0;
        int type = wid >= 0 ? M->types[wid]
                            : (len >= (Py_ssize_t)sizeof(LABEL_PREFIX) - 1 &&
                               memcmp(tok, LABEL_PREFIX, sizeof(LABEL_PREFIX) - 1) == 0)
                                  ? TYPE_LABEL
                                  : TYPE_WORD;
        if (type == TYPE_WORD) {
            if (wid < 0) {
                if (!is_eos) {
                    char *b = bracketed(M, tok, len);
                    if (!b || compute_subwords(M, b, len + 2, ids) < 0) return -1;
                }
            } else if (M->maxn <= 0) {
                if (push(ids, wid) < 0) return -1;
            } else {
                for (int32_t k = M->sub_off[wid]; k < M->sub_off[wid + 1]; k++)
                    if (push(ids, M->subs[k]) < 0) return -1;
            }
            if (push(hashes, (int32_t)h) < 0) return -1;
        }
        if (is_eos) break;
    }
    /* Dictionary::addWordNgrams */
    for (Py_ssize_t a = 0; a < hashes->n; a++) {
        uint64_t h = (uint64_t)(int64_t)hashes->v[a];
        for (Py_ssize_t b = a + 1; b < hashes->n && b < a + M->word_ngrams; b++) {
            h = h * 116049371u + (uint64_t)(int64_t)hashes->v[b];
            if (push_hash(M, ids, (int32_t)(h % (uint64_t)M->bucket)) < 0) return -1;
        }
    }
    return 0;
}

/* Model::computeHidden: the average of the rows, as QuantMatrix or DenseMatrix computes it. */
static void hidden(const Model *M, const IntVec *ids, float *x) {
    int32_t dim = M->dim;
    const float *rows = M->rows;
    int fast = 0;
#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE__)
    fast = M->dense_input && (dim == 512 || dim == 256 || dim == 64 || dim == 32 || dim == 16);
#endif
    Py_ssize_t start = 0;
    if (fast) { /* averageRowsFast: the first row copied, then the others added */
        memcpy(x, rows + (size_t)ids->v[0] * dim, (size_t)dim * sizeof(float));
        start = 1;
    } else {
        memset(x, 0, (size_t)dim * sizeof(float));
    }
    for (Py_ssize_t i = start; i < ids->n; i++) {
        const float *row = rows + (size_t)ids->v[i] * dim;
        for (int32_t d = 0; d < dim; d++) x[d] += row[d];
    }
    float a = (float)(1.0 / (double)ids->n);
    for (int32_t d = 0; d < dim; d++) x[d] *= a;
}

static PyObject *Model_predict(Model *M, PyObject *texts) {
    PyObject *seq = PySequence_Fast(texts, "predict takes a list of str");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    float *x = malloc((size_t)M->dim * sizeof(float));
    IntVec ids = {M->ids, 0, M->ids_cap}, hashes = {M->hashes, 0, M->hashes_cap};
    float floor_ = std_log(0.0f);
    if (!out || !x) goto fail;
    for (Py_ssize_t t = 0; t < n; t++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, t);
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(item, &len);
        if (!s) goto fail;
        if (memchr(s, '\n', (size_t)len)) {
            PyErr_SetString(PyExc_ValueError, "predict processes one line at a time (remove '\\n')");
            goto fail;
        }
        if (line_rows(M, s, len, &ids, &hashes) < 0) {
            PyErr_NoMemory();
            goto fail;
        }
        Best b = {0, 0.0f, -1, 0};
        if (ids.n > 0) {
            hidden(M, &ids, x);
            dfs(M, 2 * M->osz - 2, 0.0f, floor_, x, &b);
        }
        if (b.nan) {
            PyErr_SetString(PyExc_FloatingPointError, "NaN in the output layer");
            goto fail;
        }
        PyObject *res = b.have ? Py_BuildValue("(if)", (int)(b.label), (double)expf(b.score))
                               : Py_BuildValue("(if)", -1, 0.0);
        if (!res) goto fail;
        PyList_SET_ITEM(out, t, res);
    }
    M->ids = ids.v; M->ids_cap = ids.cap;
    M->hashes = hashes.v; M->hashes_cap = hashes.cap;
    free(x);
    Py_DECREF(seq);
    return out;
fail:
    M->ids = ids.v; M->ids_cap = ids.cap;
    M->hashes = hashes.v; M->hashes_cap = hashes.cap;
    free(x);
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

/* ---- the Python type ------------------------------------------------------------------------ */

static int Model_init(Model *M, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", NULL};
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&", kwlist, PyUnicode_FSConverter, &path)) return -1;
    model_free_tables(M);
    memset((char *)M + sizeof(PyObject), 0, sizeof(Model) - sizeof(PyObject));
    FILE *f = fopen(PyBytes_AS_STRING(path), "rb");
    if (!f) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        Py_DECREF(path);
        return -1;
    }
    Py_DECREF(path);
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : (1 << 20);
            uint8_t *d = realloc(data, cap);
            if (!d) { free(data); fclose(f); PyErr_NoMemory(); return -1; }
            data = d;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(data); PyErr_SetString(PyExc_OSError, "cannot read the model file"); return -1; }
    int rc = load(M, data, len);
    free(data);
    if (rc < 0) {
        model_free_tables(M);
        memset((char *)M + sizeof(PyObject), 0, sizeof(Model) - sizeof(PyObject));
    }
    return rc;
}

static void Model_dealloc(Model *M) {
    model_free_tables(M);
    Py_TYPE(M)->tp_free((PyObject *)M);
}

static PyObject *Model_labels(Model *M, void *closure) {
    (void)closure;
    if (!M->labels) Py_RETURN_NONE;
    Py_INCREF(M->labels);
    return M->labels;
}

static PyMethodDef Model_methods[] = {
    {"predict", (PyCFunction)Model_predict, METH_O,
     "predict(texts) -> [(label index or -1, probability)]: fastText's k=1 prediction of each "
     "text (one line, no newline)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Model_getset[] = {
    {"labels", (getter)Model_labels, NULL, "the model's labels, in fastText's label order", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "llama_data.pipeline.kernels._ftlid.Model",
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A supervised fastText model (.bin or .ftz) loaded for k=1 prediction.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ftlid", "fastText k=1 prediction, exact and fast (see ftlid.c).", -1, NULL,
};

PyMODINIT_FUNC PyInit__ftlid(void) {
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(m, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
