/* cc_net's 8-byte line hashes of a whole document, in one pass over the str.
 *
 * `packed_line_hashes(text)` returns exactly what the Python path in
 * llama_data/pipeline/normalize.py returns: for every line of text.split("\n"),
 * the first 8 bytes of the SHA-1 of
 *
 *     line.strip().lower(), every decimal digit (str.isdecimal) made "0", then
 *     the characters given to `set_removed` deleted, UTF-8 encoded with
 *     surrogates passed through (3 bytes each, as "surrogatepass")
 *
 * concatenated. Each step uses CPython's own character functions, so the
 * result is the same for every str:
 *   - strip: Py_UNICODE_ISSPACE at both ends (what str.strip() tests);
 *   - lower: _PyUnicode_ToLowerFull per character (what str.lower() uses; one
 *     character may become up to three, e.g. U+0130), except U+03A3, for which
 *     str.lower() looks at the characters around it (final sigma): the same
 *     rule is applied here within the stripped line. The Python path lowercases
 *     the stripped lines joined by "\n"; a newline is neither cased nor
 *     case-ignorable, so it ends the context exactly as the line's ends do;
 *   - digits: Py_UNICODE_ISDECIMAL, what re's \d matches in a str pattern;
 *   - removal: a bitmap of the code points Python hands over (one source of
 *     truth: normalize.py's UNICODE_PUNCT and control characters).
 * SHA-1 (FIPS 180-4) is written out below so the module needs no library.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- SHA-1 ------------------------------------------------------------ */

#define ROL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static inline uint32_t
load_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* One 64-byte block, the 80 rounds written out with a 16-word message schedule. */
#define SHA1_W(t) \
    (w[(t) & 15] = ROL32(w[((t) + 13) & 15] ^ w[((t) + 8) & 15] ^ \
                         w[((t) + 2) & 15] ^ w[(t) & 15], 1))
#define SHA1_F1(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define SHA1_F2(b, c, d) ((b) ^ (c) ^ (d))
#define SHA1_F3(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))
#define SHA1_ROUND(a, b, c, d, e, f, k, x) \
    do { \
        (e) += ROL32((a), 5) + f((b), (c), (d)) + (k) + (x); \
        (b) = ROL32((b), 30); \
    } while (0)
#define SHA1_R5(t, f, k, x) \
    do { \
        SHA1_ROUND(a, b, c, d, e, f, k, x(t)); \
        SHA1_ROUND(e, a, b, c, d, f, k, x((t) + 1)); \
        SHA1_ROUND(d, e, a, b, c, f, k, x((t) + 2)); \
        SHA1_ROUND(c, d, e, a, b, f, k, x((t) + 3)); \
        SHA1_ROUND(b, c, d, e, a, f, k, x((t) + 4)); \
    } while (0)
#define SHA1_W0(t) (w[t])

static void
sha1_block(uint32_t h[5], const unsigned char *block)
{
    uint32_t w[16];
    for (int t = 0; t < 16; t++) {
        w[t] = load_be32(block + 4 * t);
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    SHA1_R5(0, SHA1_F1, 0x5A827999u, SHA1_W0);
    SHA1_R5(5, SHA1_F1, 0x5A827999u, SHA1_W0);
    SHA1_R5(10, SHA1_F1, 0x5A827999u, SHA1_W0);
    SHA1_ROUND(a, b, c, d, e, SHA1_F1, 0x5A827999u, w[15]);
    SHA1_ROUND(e, a, b, c, d, SHA1_F1, 0x5A827999u, SHA1_W(16));
    SHA1_ROUND(d, e, a, b, c, SHA1_F1, 0x5A827999u, SHA1_W(17));
    SHA1_ROUND(c, d, e, a, b, SHA1_F1, 0x5A827999u, SHA1_W(18));
    SHA1_ROUND(b, c, d, e, a, SHA1_F1, 0x5A827999u, SHA1_W(19));
    SHA1_R5(20, SHA1_F2, 0x6ED9EBA1u, SHA1_W);
    SHA1_R5(25, SHA1_F2, 0x6ED9EBA1u, SHA1_W);
    SHA1_R5(30, SHA1_F2, 0x6ED9EBA1u, SHA1_W);
    SHA1_R5(35, SHA1_F2, 0x6ED9EBA1u, SHA1_W);
    SHA1_R5(40, SHA1_F3, 0x8F1BBCDCu, SHA1_W);
    SHA1_R5(45, SHA1_F3, 0x8F1BBCDCu, SHA1_W);
    SHA1_R5(50, SHA1_F3, 0x8F1BBCDCu, SHA1_W);
    SHA1_R5(55, SHA1_F3, 0x8F1BBCDCu, SHA1_W);
    SHA1_R5(60, SHA1_F2, 0xCA62C1D6u, SHA1_W);
    SHA1_R5(65, SHA1_F2, 0xCA62C1D6u, SHA1_W);
    SHA1_R5(70, SHA1_F2, 0xCA62C1D6u, SHA1_W);
    SHA1_R5(75, SHA1_F2, 0xCA62C1D6u, SHA1_W);
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* The first 8 bytes of SHA-1(data[0:len]) into out. */
static void
sha1_prefix8(const unsigned char *data, size_t len, unsigned char out[8])
{
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u,
                     0xC3D2E1F0u};
    size_t done = 0;
    while (len - done >= 64) {
        sha1_block(h, data + done);
        done += 64;
    }
    unsigned char tail[128];
    size_t rest = len - done;
    memcpy(tail, data + done, rest);
    tail[rest] = 0x80;
    size_t total = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rest + 1, 0, total - rest - 1);
    uint64_t bits = (uint64_t)len * 8u;
    for (int i = 0; i < 8; i++) {
        tail[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    }
    sha1_block(h, tail);
    if (total == 128) {
        sha1_block(h, tail + 64);
    }
    for (int i = 0; i < 2; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

/* ---- the character map ------------------------------------------------ */

#define MAX_CODE 0x110000
static unsigned char removed_bits[MAX_CODE / 8];
static int configured = 0;

/* What one Latin-1 character (U+0000-U+00FF) becomes, as UTF-8: filled by
 * set_removed from the same functions as the general path. */
static unsigned char latin1_len[256];
static unsigned char latin1_out[256][12];

static inline int
is_removed(Py_UCS4 c)
{
    return (removed_bits[c >> 3] >> (c & 7)) & 1;
}

static inline size_t
put_utf8(unsigned char *p, Py_UCS4 c)
{
    if (c < 0x80) {
        p[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        p[0] = (unsigned char)(0xC0 | (c >> 6));
        p[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) { /* surrogates too: "surrogatepass" */
        p[0] = (unsigned char)(0xE0 | (c >> 12));
        p[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        p[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    p[0] = (unsigned char)(0xF0 | (c >> 18));
    p[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    p[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    p[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* A lowercased character after the dedup map: "0" for a decimal digit,
 * nothing for a removed character, else its UTF-8 bytes. */
static inline size_t
put_mapped(unsigned char *p, Py_UCS4 c)
{
    if (Py_UNICODE_ISDECIMAL(c)) {
        p[0] = '0';
        return 1;
    }
    if (is_removed(c)) {
        return 0;
    }
    return put_utf8(p, c);
}

/* str.lower()'s rule for U+03A3 at index i of data[start:end] (CPython's
 * handle_capital_sigma, with the stripped line as the string). */
static Py_UCS4
lower_capital_sigma(int kind, const void *data, Py_ssize_t start,
                    Py_ssize_t end, Py_ssize_t i)
{
    Py_ssize_t j;
    Py_UCS4 c = 0;
    for (j = i - 1; j >= start; j--) {
        c = PyUnicode_READ(kind, data, j);
        if (!_PyUnicode_IsCaseIgnorable(c)) {
            break;
        }
    }
    int final_sigma = j >= start && _PyUnicode_IsCased(c);
    if (final_sigma && i + 1 < end) {
        for (j = i + 1; j < end; j++) {
            c = PyUnicode_READ(kind, data, j);
            if (!_PyUnicode_IsCaseIgnorable(c)) {
                break;
            }
        }
        final_sigma = j == end || !_PyUnicode_IsCased(c);
    }
    return final_sigma ? 0x3C2 : 0x3C3;
}

/* What a character (not U+03A3) becomes: lowercased, then mapped. */
static inline size_t
put_lowered(unsigned char *p, Py_UCS4 c)
{
    Py_UCS4 lowered[3];
    int n = _PyUnicode_ToLowerFull(c, lowered);
    size_t len = 0;
    for (int k = 0; k < n; k++) {
        len += put_mapped(p + len, lowered[k]);
    }
    return len;
}

/* Each source character gives at most 3 lowercased characters of at most 4
 * UTF-8 bytes. */
#define MAX_BYTES_PER_CHAR 12

/* The str argument `obj` of `fn`, as its kind, data and length; 0, or -1 with an exception. */
static int
str_arg(PyObject *obj, const char *fn, int *kind, const void **data, Py_ssize_t *length)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a str", fn);
        return -1;
    }
    if (PyUnicode_READY(obj) < 0) {
        return -1;
    }
    *kind = PyUnicode_KIND(obj);
    *data = PyUnicode_DATA(obj);
    *length = PyUnicode_GET_LENGTH(obj);
    return 0;
}

static PyObject *
set_removed(PyObject *module, PyObject *chars)
{
    int kind;
    const void *data;
    Py_ssize_t n;
    if (str_arg(chars, "set_removed", &kind, &data, &n) < 0) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\n') {
            PyErr_SetString(PyExc_ValueError,
                            "the newline separates lines; it cannot be removed");
            return NULL;
        }
    }
    memset(removed_bits, 0, sizeof(removed_bits));
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        removed_bits[c >> 3] |= (unsigned char)(1u << (c & 7));
    }
    for (Py_UCS4 c = 0; c < 256; c++) {
        latin1_len[c] = (unsigned char)put_lowered(latin1_out[c], c);
    }
    configured = 1;
    Py_RETURN_NONE;
}

static PyObject *
packed_line_hashes(PyObject *module, PyObject *text)
{
    int kind;
    const void *data;
    Py_ssize_t length;
    if (str_arg(text, "packed_line_hashes", &kind, &data, &length) < 0) {
        return NULL;
    }
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError,
                        "set_removed() has not been called (normalize.py does)");
        return NULL;
    }

    Py_ssize_t lines = 1, longest = 0, line_start = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        if (PyUnicode_READ(kind, data, i) == '\n') {
            lines++;
            if (i - line_start > longest) {
                longest = i - line_start;
            }
            line_start = i + 1;
        }
    }
    if (length - line_start > longest) {
        longest = length - line_start;
    }
    if (longest > (PY_SSIZE_T_MAX - 1) / MAX_BYTES_PER_CHAR ||
        lines > PY_SSIZE_T_MAX / 8) {
        return PyErr_NoMemory();
    }
    unsigned char *buf = PyMem_Malloc((size_t)longest * MAX_BYTES_PER_CHAR + 1);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, lines * 8);
    if (result == NULL) {
        PyMem_Free(buf);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);

    Py_ssize_t start = 0;
    while (start <= length) {
        Py_ssize_t end = start;
        while (end < length && PyUnicode_READ(kind, data, end) != '\n') {
            end++;
        }
        Py_ssize_t next = end + 1;
        Py_ssize_t s = start, e = end;
        while (s < e && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, s))) {
            s++;
        }
        while (e > s && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, e - 1))) {
            e--;
        }
        size_t len = 0;
        if (kind == PyUnicode_1BYTE_KIND) {
            const Py_UCS1 *chars = (const Py_UCS1 *)data;
            for (Py_ssize_t i = s; i < e; i++) {
                Py_UCS1 c = chars[i];
                unsigned char n = latin1_len[c];
                if (n == 1) {
                    buf[len++] = latin1_out[c][0];
                }
                else if (n) {
                    memcpy(buf + len, latin1_out[c], n);
                    len += n;
                }
            }
        }
        else {
            for (Py_ssize_t i = s; i < e; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, i);
                if (c < 256) {
                    unsigned char n = latin1_len[c];
                    memcpy(buf + len, latin1_out[c], n);
                    len += n;
                }
                else if (c == 0x3A3) {
                    len += put_mapped(buf + len,
                                      lower_capital_sigma(kind, data, s, e, i));
                }
                else {
                    len += put_lowered(buf + len, c);
                }
            }
        }
        sha1_prefix8(buf, len, out);
        out += 8;
        start = next;
    }
    PyMem_Free(buf);
    return result;
}

static PyMethodDef linehash_methods[] = {
    {"packed_line_hashes", packed_line_hashes, METH_O,
     "packed_line_hashes(text, /)\n--\n\n"
     "The first 8 bytes of SHA-1 of every normalized line of text, "
     "concatenated (llama_data.pipeline.normalize.packed_line_hashes)."},
    {"set_removed", set_removed, METH_O,
     "set_removed(chars, /)\n--\n\n"
     "The characters the line normalization deletes (after lowercasing and "
     "turning decimal digits into '0'); must be called before hashing."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef linehash_module = {
    PyModuleDef_HEAD_INIT,
    "_linehash",
    "cc_net's line normalization and 8-byte SHA-1 line hashes in C "
    "(see llama_data.pipeline.kernels).",
    -1,
    linehash_methods,
};

PyMODINIT_FUNC
PyInit__linehash(void)
{
    return PyModule_Create(&linehash_module);
}
