/*
 * tokenizer.c — the CLIP BPE tokenizer, id for id what transformers'
 * CLIPTokenizer (slow, without ftfy) gives the diffusers pipelines.
 *
 * Per prompt (each step mirrors one piece of the Python code):
 *   1. validate UTF-8 (invalid input is an error naming the byte offset);
 *   2. split on the added tokens <|startoftext|>, <|endoftext|> and the pad
 *      token ("!" for SD2), which map straight to their ids (never merged);
 *   3. each remaining piece is cleaned like BERT's BasicTokenizer: drop U+0000,
 *      U+FFFD and category C* except \t\n\r; whitespace (incl. Zs) -> ' ';
 *      spaces around CJK ideographs; NFC; split on Python whitespace;
 *      lower-case each word with Python's str.lower (full mapping of U+0130,
 *      final sigma);
 *   4. the CLIP regex (PCRE2, UCP) cuts the joined words into pre-tokens;
 *   5. each pre-token's UTF-8 bytes become "byte characters" and BPE merges
 *      them by rank, "</w>" on the last symbol.
 *
 * Invariants: after load the tokenizer is immutable; encode uses only per-call
 * buffers (no cache), so it is safe from any number of threads. Every string
 * BPE can produce (vocabulary entries, the 512 initial byte symbols, merge
 * parts and results) is a "symbol" with an index; BPE runs on symbol indices
 * and a hash map (symbol a, symbol b) -> (rank, merged symbol). A symbol not
 * in vocab.json maps to the unknown token (<|endoftext|>), as in Python.
 */
#include "model/tokenizer.h"

#include "io/json.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <limits.h>
#include <pcre2.h>
#include <string.h>
#include <utf8proc.h>

/* transformers reads merges.txt as lines[1 : 49152 - 256 - 2 + 1]: the header
 * line is skipped and at most this many merges are used. */
#define MAX_MERGES (49152 - 256 - 2)
#define MAX_VOCAB_ID (1 << 24) /* refuse absurd ids rather than allocate for them */
#define N_BODY (SLD_N_CTX - 2)  /* tokens between BOS and EOS */

static const char BOS_STR[] = "<|startoftext|>";
static const char EOS_STR[] = "<|endoftext|>";

/* CLIP's pre-tokenizer (transformers tokenization_clip.py, regex module with
 * IGNORECASE); PCRE2 with UCP gives \p{..} and \s the same Unicode meaning. */
static const char CLIP_PATTERN[] = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|"
                                   "[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

typedef struct {
    uint64_t key; /* (a << 32) | b; EMPTY_KEY when free */
    int32_t rank;
    int32_t merged;
} pair_slot;
#define EMPTY_KEY UINT64_MAX

typedef struct {
    char *str;
    size_t len;
    int32_t id;
} split_token;

struct sld_tokenizer {
    /* symbols: strings in one pool, addressed by offset (the pool grows) */
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *sym_off, *sym_len;
    int32_t *sym_id; /* vocab id, or -1 until load ends, then unk */
    int32_t n_sym, cap_sym;
    uint32_t *sym_slots; /* open addressing: symbol index + 1, 0 = empty */
    uint32_t sym_mask;
    /* merges */
    pair_slot *pairs;
    uint64_t pair_mask;
    /* initial BPE symbols of each byte, alone and as the word's last symbol */
    int32_t init_sym[256], init_sym_end[256];
    /* vocab id -> symbol (decoding), -1 where no entry */
    int32_t *id_sym;
    int32_t n_ids;
    /* byte-level character (code point < 324) -> original byte */
    uint8_t byte_of_cp[324];
    split_token split[3];
    int n_split;
    int32_t bos, eos, pad, unk;
    pcre2_code *re;
};

/* ===================================================================== */
/* Hash maps                                                             */
/* ===================================================================== */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30; /* splitmix64 finaliser */
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int32_t sym_find(const sld_tokenizer *t, const char *s, size_t n)
{
    for (uint32_t i = hash_bytes(s, n) & t->sym_mask;; i = (i + 1) & t->sym_mask) {
        uint32_t v = t->sym_slots[i];
        if (!v)
            return -1;
        int32_t k = (int32_t)v - 1;
        if (t->sym_len[k] == n && !memcmp(t->pool + t->sym_off[k], s, n))
            return k;
    }
}

/* Finds or adds the symbol s[0..n); returns its index or -1 (out of memory). */
static int32_t sym_intern(sld_tokenizer *t, const char *s, size_t n)
{
    uint32_t i = hash_bytes(s, n) & t->sym_mask;
    for (;; i = (i + 1) & t->sym_mask) {
        uint32_t v = t->sym_slots[i];
        if (!v)
            break;
        int32_t k = (int32_t)v - 1;
        if (t->sym_len[k] == n && !memcmp(t->pool + t->sym_off[k], s, n))
            return k;
    }
    /* capacity was sized at load for every symbol the files can produce */
    if (t->n_sym >= t->cap_sym)
        return -1;
    if (t->pool_len + n + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 16;
        while (cap < t->pool_len + n + 1)
            cap *= 2;
        char *p = sld_realloc(t->pool, cap);
        if (!p)
            return -1;
        t->pool = p;
        t->pool_cap = cap;
    }
    if (t->pool_len > UINT32_MAX - n - 1)
        return -1;
    memcpy(t->pool + t->pool_len, s, n);
    t->pool[t->pool_len + n] = 0;
    int32_t k = t->n_sym++;
    t->sym_off[k] = (uint32_t)t->pool_len;
    t->sym_len[k] = (uint32_t)n;
    t->sym_id[k] = -1;
    t->pool_len += n + 1;
    t->sym_slots[i] = (uint32_t)k + 1;
    return k;
}

static const pair_slot *pair_find(const sld_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint64_t i = hash_u64(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        const pair_slot *p = &t->pairs[i];
        if (p->key == key)
            return p;
        if (p->key == EMPTY_KEY)
            return NULL;
    }
}

/* Later lines win for a repeated pair, like dict(zip(merges, range(n))). */
static void pair_put(sld_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t i = hash_u64(key) & t->pair_mask;
    while (t->pairs[i].key != EMPTY_KEY && t->pairs[i].key != key)
        i = (i + 1) & t->pair_mask;
    t->pairs[i].key = key;
    t->pairs[i].rank = rank;
    t->pairs[i].merged = merged;
}

/* ===================================================================== */
/* UTF-8                                                                 */
/* ===================================================================== */

/* Length of the well-formed UTF-8 sequence at s[0..n) (1-4) and its code
 * point, or 0 when it is ill-formed (RFC 3629: no overlongs, surrogates or
 * code points above U+10FFFF). */
static int utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static int utf8_put(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ===================================================================== */
/* Growable per-call buffers                                             */
/* ===================================================================== */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytebuf;

typedef struct {
    int32_t *p;
    size_t n, cap;
} intbuf;

static int bytebuf_reserve(bytebuf *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra)
        cap *= 2;
    uint8_t *p = sld_realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int bytebuf_cp(bytebuf *b, uint32_t cp)
{
    if (bytebuf_reserve(b, 4))
        return -1;
    b->n += (size_t)utf8_put(b->p + b->n, cp);
    return 0;
}

static int intbuf_reserve(intbuf *b, size_t extra)
{
    if (b->n + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra)
        cap *= 2;
    int32_t *p = sld_realloc(b->p, cap * sizeof *p);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int intbuf_push(intbuf *b, int32_t v)
{
    if (intbuf_reserve(b, 1))
        return -1;
    b->p[b->n++] = v;
    return 0;
}

/* Scratch of one encode call. */
typedef struct {
    bytebuf clean;   /* cleaned piece, UTF-8 */
    intbuf cps;      /* NFC code points */
    bytebuf joined;  /* lower-cased words joined by ' ' */
    bytebuf word;    /* one pre-token as bytes */
    intbuf syms, tmp; /* BPE working symbols */
    intbuf ids;      /* output ids */
    pcre2_match_data *md;
} scratch;

static void scratch_free(scratch *s)
{
    sld_free(s->clean.p);
    sld_free(s->cps.p);
    sld_free(s->joined.p);
    sld_free(s->word.p);
    sld_free(s->syms.p);
    sld_free(s->tmp.p);
    sld_free(s->ids.p);
    pcre2_match_data_free(s->md);
}

/* ===================================================================== */
/* Cleaning (BERT BasicTokenizer) and Python's str.lower                 */
/* ===================================================================== */

static int is_control(uint32_t cp, utf8proc_category_t cat)
{
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return 0;
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
           cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO ||
           cat == UTF8PROC_CATEGORY_CN;
}

/* BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks. */
static int is_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Python's str.isspace (what str.split() splits on). */
static int py_isspace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Unicode "Cased" (Lu, Ll, Lt, Other_Lowercase, Other_Uppercase): category
 * or a case mapping, plus the few Other_* without one (checked against
 * Python 3.11 over every code point). */
static int is_cased(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT)
        return 1;
    if (cp == 0xAA || cp == 0xBA || (cp >= 0x1F130 && cp <= 0x1F149) ||
        (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189))
        return 1;
    return utf8proc_tolower((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp ||
           utf8proc_toupper((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp;
}

/* Unicode "Case_Ignorable": Mn Me Cf Lm Sk and Word_Break MidLetter,
 * MidNumLet, Single_Quote. */
static int is_case_ignorable(uint32_t cp)
{
    switch (cp) {
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    default:
        break;
    }
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
           c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK;
}

/* Python's Final_Sigma rule (unicodeobject.c handle_capital_sigma) for the
 * capital sigma at w[i] of a word w[0..n). */
static uint32_t lower_sigma(const int32_t *w, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && is_case_ignorable((uint32_t)w[j - 1]))
        j--;
    if (j == 0 || !is_cased((uint32_t)w[j - 1]))
        return 0x3C3;
    for (j = i + 1; j < n && is_case_ignorable((uint32_t)w[j]); j++)
        ;
    return (j == n || !is_cased((uint32_t)w[j])) ? 0x3C2 : 0x3C3;
}

/* Appends Python's word.lower() of w[0..n) to out as UTF-8. */
static int lower_word(bytebuf *out, const int32_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = (uint32_t)w[i];
        int rc;
        if (cp < 0x80) {
            rc = bytebuf_cp(out, (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp);
        } else if (cp == 0x130) { /* SpecialCasing: I WITH DOT ABOVE -> i + U+0307 */
            rc = bytebuf_cp(out, 'i') || bytebuf_cp(out, 0x307);
        } else if (cp == 0x3A3) {
            rc = bytebuf_cp(out, lower_sigma(w, n, i));
        } else {
            rc = bytebuf_cp(out, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
        }
        if (rc)
            return -1;
    }
    return 0;
}

/* Cleans s[0..n) (valid UTF-8) into sc->joined: BasicTokenizer.tokenize
 * followed by CLIP's " ".join. */
static sld_status clean_piece(scratch *sc, const uint8_t *s, size_t n, sld_error *err)
{
    bytebuf *cl = &sc->clean;
    cl->n = 0;
    int need_nfc = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_next(s + i, n - i, &cp);
        i += (size_t)len;
        if (cp < 0x80) { /* ASCII fast path: same rules */
            if (cp == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7F)
                continue;
            if (bytebuf_reserve(cl, 1))
                goto oom;
            cl->p[cl->n++] = (cp == '\t' || cp == '\n' || cp == '\r') ? ' ' : (uint8_t)cp;
            continue;
        }
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
        if (cp == 0xFFFD || is_control(cp, cat))
            continue;
        if (cat == UTF8PROC_CATEGORY_ZS) {
            if (bytebuf_cp(cl, ' '))
                goto oom;
        } else if (is_cjk(cp)) {
            if (bytebuf_cp(cl, ' ') || bytebuf_cp(cl, cp) || bytebuf_cp(cl, ' '))
                goto oom;
        } else {
            if (bytebuf_cp(cl, cp))
                goto oom;
        }
        /* below U+0300 every character is NFC-stable and none combines */
        if (cp >= 0x300)
            need_nfc = 1;
    }

    /* NFC into code points */
    intbuf *cps = &sc->cps;
    cps->n = 0;
    if (need_nfc) {
        const utf8proc_option_t opt = UTF8PROC_COMPOSE | UTF8PROC_STABLE;
        utf8proc_ssize_t m = cl->n;
        for (;;) {
            if (intbuf_reserve(cps, (size_t)m))
                goto oom;
            m = utf8proc_decompose(cl->p, (utf8proc_ssize_t)cl->n, cps->p,
                                   (utf8proc_ssize_t)cps->cap, opt);
            if (m < 0)
                return sld_err(err, SLD_ERR_INTERNAL, "tokenizer: NFC failed: %s",
                               utf8proc_errmsg(m));
            if ((size_t)m <= cps->cap)
                break;
        }
        m = utf8proc_normalize_utf32(cps->p, m, opt);
        if (m < 0)
            return sld_err(err, SLD_ERR_INTERNAL, "tokenizer: NFC failed: %s", utf8proc_errmsg(m));
        cps->n = (size_t)m;
    } else {
        if (intbuf_reserve(cps, cl->n))
            goto oom;
        for (size_t i = 0; i < cl->n;) {
            uint32_t cp;
            i += (size_t)utf8_next(cl->p + i, cl->n - i, &cp);
            cps->p[cps->n++] = (int32_t)cp;
        }
    }

    /* whitespace_tokenize, lower() per word, " ".join */
    bytebuf *jo = &sc->joined;
    jo->n = 0;
    for (size_t i = 0; i < cps->n;) {
        while (i < cps->n && py_isspace((uint32_t)cps->p[i]))
            i++;
        size_t start = i;
        while (i < cps->n && !py_isspace((uint32_t)cps->p[i]))
            i++;
        if (i == start)
            break;
        if (jo->n && bytebuf_cp(jo, ' '))
            goto oom;
        if (lower_word(jo, cps->p + start, i - start))
            goto oom;
    }
    return SLD_OK;
oom:
    return sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
}

/* ===================================================================== */
/* BPE                                                                   */
/* ===================================================================== */

/* Appends the ids of one pre-token w[0..n) (raw UTF-8 bytes, n >= 1).
 * Mirrors CLIPTokenizer.bpe: repeatedly merge every occurrence (left to
 * right) of the adjacent pair with the lowest rank. */
static int bpe_word(const sld_tokenizer *t, scratch *sc, const uint8_t *w, size_t n)
{
    intbuf *a = &sc->syms, *b = &sc->tmp;
    a->n = 0;
    if (intbuf_reserve(a, n) || intbuf_reserve(b, n))
        return -1;
    for (size_t i = 0; i + 1 < n; i++)
        a->p[i] = t->init_sym[w[i]];
    a->p[n - 1] = t->init_sym_end[w[n - 1]];
    a->n = n;
    while (a->n > 1) {
        int32_t best = INT32_MAX, first = -1, second = -1, merged = -1;
        for (size_t i = 0; i + 1 < a->n; i++) {
            const pair_slot *p = pair_find(t, a->p[i], a->p[i + 1]);
            if (p && p->rank < best) {
                best = p->rank;
                first = a->p[i];
                second = a->p[i + 1];
                merged = p->merged;
            }
        }
        if (first < 0)
            break;
        size_t j = 0;
        for (size_t i = 0; i < a->n;) {
            if (i + 1 < a->n && a->p[i] == first && a->p[i + 1] == second) {
                b->p[j++] = merged;
                i += 2;
            } else {
                b->p[j++] = a->p[i++];
            }
        }
        b->n = j;
        intbuf x = *a;
        *a = *b;
        *b = x;
    }
    if (intbuf_reserve(&sc->ids, a->n))
        return -1;
    for (size_t i = 0; i < a->n; i++)
        sc->ids.p[sc->ids.n++] = t->sym_id[a->p[i]];
    return 0;
}

/* Pre-tokenizes sc->joined with the CLIP regex and BPE-encodes each match. */
static sld_status encode_joined(const sld_tokenizer *t, scratch *sc, sld_error *err)
{
    const uint8_t *s = sc->joined.p;
    size_t n = sc->joined.n, off = 0;
    while (off < n) {
        int rc = pcre2_match(t->re, s, n, off, PCRE2_NO_UTF_CHECK, sc->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return sld_err(err, SLD_ERR_INTERNAL, "tokenizer: regex match failed: %s",
                           (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) /* the pattern cannot match empty; guard anyway */
            return sld_err(err, SLD_ERR_INTERNAL, "tokenizer: empty regex match");
        size_t len = me - ms;
        /* CLIPTokenizer.bpe's cache returns the special tokens unchanged */
        if (len == sizeof BOS_STR - 1 && !memcmp(s + ms, BOS_STR, len)) {
            if (intbuf_push(&sc->ids, t->bos))
                goto oom;
        } else if (len == sizeof EOS_STR - 1 && !memcmp(s + ms, EOS_STR, len)) {
            if (intbuf_push(&sc->ids, t->eos))
                goto oom;
        } else if (bpe_word(t, sc, s + ms, len)) {
            goto oom;
        }
        off = me;
    }
    return SLD_OK;
oom:
    return sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
}

/* ===================================================================== */
/* Encoding                                                              */
/* ===================================================================== */

static sld_status validate_utf8(const uint8_t *s, size_t n, sld_error *err)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_next(s + i, n - i, &cp);
        if (!len)
            return sld_err(err, SLD_ERR_INVALID_ARG,
                           "prompt is not valid UTF-8: bad byte 0x%02X at byte offset %zu", s[i],
                           i);
        i += (size_t)len;
    }
    return SLD_OK;
}

/* The added token starting at s[0..n), longest first, or NULL. */
static const split_token *match_split(const sld_tokenizer *t, const uint8_t *s, size_t n)
{
    const split_token *best = NULL;
    for (int k = 0; k < t->n_split; k++) {
        const split_token *st = &t->split[k];
        if (st->len <= n && !memcmp(s, st->str, st->len) && (!best || st->len > best->len))
            best = st;
    }
    return best;
}

static sld_status tokenize_into(const sld_tokenizer *t, scratch *sc, const char *text, size_t len,
                                sld_error *err)
{
    const uint8_t *s = (const uint8_t *)text;
    sld_status st = validate_utf8(s, len, err);
    if (st)
        return st;
    sc->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!sc->md)
        return sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
    size_t piece = 0;
    for (size_t i = 0; i <= len;) {
        const split_token *sp = i < len ? match_split(t, s + i, len - i) : NULL;
        if (!sp && i < len) {
            i++;
            continue;
        }
        if (i > piece) {
            if ((st = clean_piece(sc, s + piece, i - piece, err)) != SLD_OK ||
                (st = encode_joined(t, sc, err)) != SLD_OK)
                return st;
        }
        if (!sp)
            break;
        if (intbuf_push(&sc->ids, sp->id))
            return sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
        i += sp->len;
        piece = i;
    }
    return SLD_OK;
}

sld_status sld_tokenizer_tokenize(const sld_tokenizer *t, const char *text, size_t len,
                                  int32_t **out, size_t *n, sld_error *err)
{
    *out = NULL;
    *n = 0;
    if (!t || (!text && len))
        return sld_err(err, SLD_ERR_INVALID_ARG, "tokenizer: NULL argument");
    scratch sc = {0};
    sld_status st = tokenize_into(t, &sc, text, len, err);
    if (st == SLD_OK) {
        *out = sc.ids.p ? sc.ids.p : sld_malloc(0);
        *n = sc.ids.n;
        sc.ids.p = NULL;
        if (!*out)
            st = sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
    }
    scratch_free(&sc);
    return st;
}

/* Decodes ids like CLIPTokenizer.convert_tokens_to_string (byte characters
 * back to bytes, "</w>" -> ' ', stripped), invalid UTF-8 shown as U+FFFD, at
 * most cap-1 bytes (cut on a character boundary, "..." appended). */
static void decode_ids(const sld_tokenizer *t, const int32_t *ids, size_t n, char *dst, size_t cap)
{
    bytebuf raw = {0};
    size_t k = 0;
    for (; k < n && raw.n < cap * 2; k++) {
        const char *tok = sld_tokenizer_token(t, ids[k]);
        if (!tok)
            continue;
        size_t tl = strlen(tok);
        for (size_t i = 0; i < tl;) {
            uint32_t cp;
            int l = utf8_next((const uint8_t *)tok + i, tl - i, &cp);
            if (!l)
                break;
            i += (size_t)l;
            if (bytebuf_reserve(&raw, 1))
                goto done;
            raw.p[raw.n++] = cp < 324 ? t->byte_of_cp[cp] : '?';
        }
    }
done:;
    /* "</w>" -> ' ', collapse at ends */
    size_t o = 0, lim = cap > 4 ? cap - 4 : 0;
    int cut = k < n; /* tokens left unread */
    for (size_t i = 0; i < raw.n;) {
        if (i + 4 <= raw.n && !memcmp(raw.p + i, "</w>", 4)) {
            if (o < lim)
                dst[o++] = ' ';
            i += 4;
            continue;
        }
        uint32_t cp;
        int l = utf8_next(raw.p + i, raw.n - i, &cp);
        const char *rep = "\xEF\xBF\xBD";
        const uint8_t *src = l ? raw.p + i : (const uint8_t *)rep;
        size_t sl = l ? (size_t)l : 3;
        if (o + sl > lim) {
            cut = 1;
            break;
        }
        memcpy(dst + o, src, sl);
        o += sl;
        i += l ? (size_t)l : 1;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    size_t b = 0;
    while (b < o && dst[b] == ' ')
        b++;
    memmove(dst, dst + b, o - b);
    o -= b;
    if (cut && cap >= 4) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    if (cap)
        dst[o] = 0;
    sld_free(raw.p);
}

sld_status sld_tokenizer_encode_len(const sld_tokenizer *t, const char *text, size_t len,
                                    int32_t ids[SLD_N_CTX], int *truncated, sld_error *err)
{
    if (truncated)
        *truncated = 0;
    if (!t || !ids || (!text && len))
        return sld_err(err, SLD_ERR_INVALID_ARG, "tokenizer: NULL argument");
    scratch sc = {0};
    sld_status st = tokenize_into(t, &sc, text, len, err);
    if (st == SLD_OK) {
        size_t n = sc.ids.n, keep = n < N_BODY ? n : N_BODY;
        ids[0] = t->bos;
        if (keep)
            memcpy(ids + 1, sc.ids.p, keep * sizeof *ids);
        ids[1 + keep] = t->eos;
        for (size_t i = keep + 2; i < SLD_N_CTX; i++)
            ids[i] = t->pad;
        if (n > N_BODY) {
            if (truncated)
                *truncated = 1;
            char dropped[400];
            decode_ids(t, sc.ids.p + N_BODY, n - N_BODY, dropped, sizeof dropped);
            /* diffusers' wording, plus the count */
            sld_log(SLD_LOG_WARN,
                    "The following part of your input was truncated because CLIP can only "
                    "handle sequences up to %d tokens (%zu tokens dropped): %s",
                    SLD_N_CTX, n - N_BODY, dropped);
        }
    }
    scratch_free(&sc);
    return st;
}

sld_status sld_tokenizer_encode(const sld_tokenizer *t, const char *text, int32_t ids[77],
                                int *truncated, sld_error *err)
{
    if (!text) {
        if (truncated)
            *truncated = 0;
        return sld_err(err, SLD_ERR_INVALID_ARG, "tokenizer: prompt is NULL");
    }
    return sld_tokenizer_encode_len(t, text, strlen(text), ids, truncated, err);
}

int32_t sld_tokenizer_pad_id(const sld_tokenizer *t) { return t->pad; }
int32_t sld_tokenizer_bos_id(const sld_tokenizer *t) { return t->bos; }
int32_t sld_tokenizer_eos_id(const sld_tokenizer *t) { return t->eos; }

int32_t sld_tokenizer_n_ids(const sld_tokenizer *t)
{
    int32_t n = t->n_ids;
    const int32_t special[4] = {t->bos, t->eos, t->pad, t->unk};
    for (int i = 0; i < 4; i++)
        if (special[i] >= n)
            n = special[i] + 1;
    return n;
}

const char *sld_tokenizer_token(const sld_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_ids || t->id_sym[id] < 0)
        return NULL;
    return t->pool + t->sym_off[t->id_sym[id]];
}

/* ===================================================================== */
/* Loading                                                               */
/* ===================================================================== */

void sld_tokenizer_free(sld_tokenizer *t)
{
    if (!t)
        return;
    sld_free(t->pool);
    sld_free(t->sym_off);
    sld_free(t->sym_len);
    sld_free(t->sym_id);
    sld_free(t->sym_slots);
    sld_free(t->pairs);
    sld_free(t->id_sym);
    for (int k = 0; k < t->n_split; k++)
        sld_free(t->split[k].str);
    pcre2_code_free(t->re);
    sld_free(t);
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest
 * are moved to U+0100 upwards in byte order. */
static void byte_chars(uint32_t cp_of_byte[256])
{
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        cp_of_byte[b] = printable ? (uint32_t)b : next++;
    }
}

static size_t next_pow2(size_t n)
{
    size_t p = 16;
    while (p < n)
        p *= 2;
    return p;
}

/* One merges.txt line l[0..n) -> two fields. 0 on success. */
static int split_merge(const char *l, size_t n, const char **a, size_t *an, const char **b,
                       size_t *bn)
{
    const char *f[3];
    size_t fl[3];
    int k = 0;
    /* str.split(): runs of ASCII whitespace separate fields */
    for (size_t i = 0; i < n;) {
        while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r' || l[i] == '\v' ||
                         l[i] == '\f'))
            i++;
        if (i == n)
            break;
        size_t s = i;
        while (i < n && !(l[i] == ' ' || l[i] == '\t' || l[i] == '\r' || l[i] == '\v' ||
                          l[i] == '\f'))
            i++;
        if (k == 3)
            return -1;
        f[k] = l + s;
        fl[k] = i - s;
        k++;
    }
    if (k != 2)
        return -1;
    *a = f[0];
    *an = fl[0];
    *b = f[1];
    *bn = fl[1];
    return 0;
}

/* Fills the symbols and the id -> symbol table from a parsed vocab.json. */
static sld_status load_vocab(sld_tokenizer *t, const sld_json *jv, sld_error *err)
{
    const char *path = jv->path;
    sld_status st = SLD_OK;
    int32_t max_id = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, jv->root)
    {
        if (!e->string || !cJSON_IsNumber(e) || e->valuedouble < 0 ||
            e->valuedouble >= MAX_VOCAB_ID || e->valuedouble != (double)(int32_t)e->valuedouble) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: token \"%.60s\" must map to an integer id in [0, %d)", path,
                         e->string ? e->string : "?", MAX_VOCAB_ID);
            goto out;
        }
        int32_t id = (int32_t)e->valuedouble;
        int32_t k = sym_intern(t, e->string, strlen(e->string));
        if (k < 0) {
            st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
            goto out;
        }
        t->sym_id[k] = id; /* a repeated key: the later id wins, like a dict */
        if (id > max_id)
            max_id = id;
    }
    t->n_ids = max_id + 1;
    t->id_sym = sld_malloc((size_t)(t->n_ids ? t->n_ids : 1) * sizeof *t->id_sym);
    if (!t->id_sym) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (int32_t i = 0; i < t->n_ids; i++)
        t->id_sym[i] = -1;
    /* {v: k for k, v in encoder.items()}: the last key of an id wins */
    cJSON_ArrayForEach(e, jv->root)
    {
        int32_t k = sym_find(t, e->string, strlen(e->string));
        t->id_sym[(int32_t)e->valuedouble] = k;
    }
out:
    return st;
}

static sld_status load_merges(sld_tokenizer *t, const char *text, size_t len, const char *path,
                              sld_error *err)
{
    /* read().strip().split("\n")[1:MAX_MERGES + 1] */
    size_t b = 0, e = len;
    while (b < e && (text[b] == ' ' || (text[b] >= '\t' && text[b] <= '\r')))
        b++;
    while (e > b && (text[e - 1] == ' ' || (text[e - 1] >= '\t' && text[e - 1] <= '\r')))
        e--;
    size_t line = 0;
    int32_t rank = 0;
    char *cat = NULL;
    size_t cat_cap = 0;
    sld_status st = SLD_OK;
    for (size_t i = b; i < e && rank < MAX_MERGES; line++) {
        size_t s = i;
        while (i < e && text[i] != '\n')
            i++;
        size_t ln = i - s;
        if (i < e)
            i++; /* past '\n' */
        if (line == 0)
            continue; /* "#version: 0.2" */
        const char *pa, *pb;
        size_t na, nb;
        if (split_merge(text + s, ln, &pa, &na, &pb, &nb)) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: line %zu: expected two space-separated symbols, got \"%.*s\"",
                         path, line + 1, (int)(ln < 40 ? ln : 40), text + s);
            break;
        }
        if (na + nb > cat_cap) {
            cat_cap = (na + nb) * 2;
            char *c = sld_realloc(cat, cat_cap);
            if (!c) {
                st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            cat = c;
        }
        memcpy(cat, pa, na);
        memcpy(cat + na, pb, nb);
        int32_t ka = sym_intern(t, pa, na), kb = sym_intern(t, pb, nb);
        int32_t km = sym_intern(t, cat, na + nb);
        if (ka < 0 || kb < 0 || km < 0) {
            st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        pair_put(t, ka, kb, rank++, km);
    }
    sld_free(cat);
    return st;
}

static sld_status add_split(sld_tokenizer *t, const char *s, const char *vocab_path,
                            sld_error *err)
{
    size_t n = strlen(s);
    for (int k = 0; k < t->n_split; k++)
        if (t->split[k].len == n && !memcmp(t->split[k].str, s, n))
            return SLD_OK;
    int32_t k = sym_find(t, s, n);
    if (k < 0 || t->sym_id[k] < 0)
        return sld_err(err, SLD_ERR_FORMAT, "%s: has no entry for the special token \"%.60s\"",
                       vocab_path, s);
    split_token *sp = &t->split[t->n_split];
    sp->str = sld_strdup(s);
    if (!sp->str)
        return sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
    sp->len = n;
    sp->id = t->sym_id[k];
    t->n_split++;
    return SLD_OK;
}

sld_status sld_tokenizer_load(sld_tokenizer **out, const char *vocab_json, const char *merges_txt,
                              const char *pad_token, sld_error *err)
{
    *out = NULL;
    if (!vocab_json || !merges_txt)
        return sld_err(err, SLD_ERR_INVALID_ARG, "tokenizer: NULL path");
    if (!pad_token)
        pad_token = EOS_STR;
    if (!*pad_token)
        return sld_err(err, SLD_ERR_CONFIG, "tokenizer: empty pad token");

    char *merges = NULL;
    size_t merges_len = 0;
    sld_status st = sld_file_read(merges_txt, (size_t)64 << 20, &merges, &merges_len, err);
    if (st)
        return st;
    if (!merges_len || memchr(merges, 0, merges_len)) {
        sld_free(merges);
        return sld_err(err, SLD_ERR_FORMAT, "%s: %s", merges_txt,
                       merges_len ? "contains a NUL byte" : "is empty");
    }

    sld_json jv = {0};
    sld_tokenizer *t = sld_calloc(1, sizeof *t);
    if (!t) {
        sld_free(merges);
        return sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
    }
    /* Sizes: every symbol is a vocab entry, one of the 512 initial byte
     * symbols, or a part/result of a merge line (at most 3 per line; lines
     * are bounded by the newline count). The vocab file bounds its entries by
     * its size. */
    size_t n_lines = 1;
    for (size_t i = 0; i < merges_len; i++)
        n_lines += merges[i] == '\n';
    if (n_lines > MAX_MERGES + 1)
        n_lines = MAX_MERGES + 1;
    st = sld_json_load(&jv, vocab_json, err);
    if (st)
        goto fail;
    if (!cJSON_IsObject(jv.root)) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: expected a JSON object of token -> id",
                     vocab_json);
        goto fail;
    }
    size_t cap = (size_t)cJSON_GetArraySize(jv.root) + 512 + 3 * n_lines + 8;
    t->cap_sym = (int32_t)cap;
    size_t slots = next_pow2(cap * 2);
    t->sym_mask = (uint32_t)(slots - 1);
    t->sym_off = sld_malloc(cap * sizeof *t->sym_off);
    t->sym_len = sld_malloc(cap * sizeof *t->sym_len);
    t->sym_id = sld_malloc(cap * sizeof *t->sym_id);
    t->sym_slots = sld_calloc(slots, sizeof *t->sym_slots);
    size_t pslots = next_pow2(n_lines * 2);
    t->pair_mask = pslots - 1;
    t->pairs = sld_malloc(pslots * sizeof *t->pairs);
    if (!t->sym_off || !t->sym_len || !t->sym_id || !t->sym_slots || !t->pairs) {
        st = sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < pslots; i++)
        t->pairs[i].key = EMPTY_KEY;
    if ((st = load_vocab(t, &jv, err)) != SLD_OK)
        goto fail;
    sld_json_free(&jv);

    /* initial symbols, interned before the merges so they always exist */
    uint32_t cp_of_byte[256];
    byte_chars(cp_of_byte);
    for (int byte = 0; byte < 256; byte++) {
        uint8_t s[8];
        int l = utf8_put(s, cp_of_byte[byte]);
        t->byte_of_cp[cp_of_byte[byte]] = (uint8_t)byte;
        t->init_sym[byte] = sym_intern(t, (const char *)s, (size_t)l);
        memcpy(s + l, "</w>", 4);
        t->init_sym_end[byte] = sym_intern(t, (const char *)s, (size_t)l + 4);
        if (t->init_sym[byte] < 0 || t->init_sym_end[byte] < 0) {
            st = sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
            goto fail;
        }
    }
    if ((st = load_merges(t, merges, merges_len, merges_txt, err)) != SLD_OK)
        goto fail;

    /* specials: bos/eos are required; unknown strings map to unk (eos) */
    int32_t kb = sym_find(t, BOS_STR, sizeof BOS_STR - 1);
    int32_t ke = sym_find(t, EOS_STR, sizeof EOS_STR - 1);
    if (kb < 0 || t->sym_id[kb] < 0 || ke < 0 || t->sym_id[ke] < 0) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: has no entry for %s", vocab_json,
                     kb < 0 || t->sym_id[kb] < 0 ? BOS_STR : EOS_STR);
        goto fail;
    }
    t->bos = t->sym_id[kb];
    t->eos = t->unk = t->sym_id[ke];
    for (int32_t k = 0; k < t->n_sym; k++)
        if (t->sym_id[k] < 0)
            t->sym_id[k] = t->unk;
    if ((st = add_split(t, BOS_STR, vocab_json, err)) ||
        (st = add_split(t, EOS_STR, vocab_json, err)) ||
        (st = add_split(t, pad_token, vocab_json, err)))
        goto fail;
    for (int k = 0; k < t->n_split; k++)
        if (t->split[k].len == strlen(pad_token) && !strcmp(t->split[k].str, pad_token))
            t->pad = t->split[k].id;

    int ecode;
    PCRE2_SIZE eoff;
    t->re = pcre2_compile((PCRE2_SPTR)CLIP_PATTERN, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &ecode, &eoff, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        st = sld_err(err, SLD_ERR_INTERNAL, "tokenizer: cannot compile the CLIP regex: %s",
                     (const char *)msg);
        goto fail;
    }
    /* JIT is only a speed-up; the interpreter gives the same matches */
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);

    sld_free(merges);
    *out = t;
    return SLD_OK;
fail:
    sld_json_free(&jv);
    sld_free(merges);
    sld_tokenizer_free(t);
    return st;
}

/* pad_token in a tokenizer JSON: a string or {"content": "..."}. Sets *pad
 * to a new string (caller frees) or leaves it NULL when the key is absent. */
static sld_status read_pad(const char *path, char **pad, sld_error *err)
{
    *pad = NULL;
    if (!sld_path_exists(path))
        return SLD_OK;
    sld_json j;
    sld_status st = sld_json_load(&j, path, err);
    if (st)
        return st;
    const cJSON *v = cJSON_IsObject(j.root) ? cJSON_GetObjectItemCaseSensitive(j.root, "pad_token")
                                            : NULL;
    if (cJSON_IsObject(v))
        v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || !v->valuestring[0])
            st = sld_err(err, SLD_ERR_CONFIG,
                         "%s: \"pad_token\" must be a string or {\"content\": string}", path);
        else if (!(*pad = sld_strdup(v->valuestring)))
            st = sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
    }
    sld_json_free(&j);
    return st;
}

sld_status sld_tokenizer_load_dir(sld_tokenizer **out, const char *dir, sld_error *err)
{
    *out = NULL;
    if (!dir)
        return sld_err(err, SLD_ERR_INVALID_ARG, "tokenizer: NULL folder");
    if (!sld_path_is_dir(dir))
        return sld_err(err, SLD_ERR_IO, "%s: tokenizer folder not found", dir);
    char *vocab = sld_path_join(dir, "vocab.json");
    char *merges = sld_path_join(dir, "merges.txt");
    char *stm = sld_path_join(dir, "special_tokens_map.json");
    char *cfg = sld_path_join(dir, "tokenizer_config.json");
    char *pad = NULL;
    sld_status st;
    if (!vocab || !merges || !stm || !cfg) {
        st = sld_err(err, SLD_ERR_NOMEM, "tokenizer: out of memory");
        goto out;
    }
    if ((st = read_pad(stm, &pad, err)) != SLD_OK)
        goto out;
    if (!pad && (st = read_pad(cfg, &pad, err)) != SLD_OK)
        goto out;
    st = sld_tokenizer_load(out, vocab, merges, pad ? pad : EOS_STR, err);
out:
    sld_free(vocab);
    sld_free(merges);
    sld_free(stm);
    sld_free(cfg);
    sld_free(pad);
    return st;
}
