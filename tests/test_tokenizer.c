/* test_tokenizer.c — the CLIP BPE tokenizer against transformers' goldens
 * (tests/fixtures/tokenizer/tokenizer.json: 60 prompts, SD1 and SD2 pad
 * conventions), truncation warning, invalid UTF-8, loader error paths,
 * allocation failures and concurrent use. */
#include "core/core.h"
#include "io/json.h"
#include "model/tokenizer.h"
#include "test.h"

#include <unistd.h>

static sld_tokenizer *tok_sd1, *tok_sd2;
static sld_json goldens;

/* The prompts with their exact bytes: cJSON ends a string at an escaped
 * \u0000, so they are decoded here from the raw file ("prompt": "..."). */
#define N_PROMPTS 60
static char *prompt_text[N_PROMPTS];
static size_t prompt_len[N_PROMPTS];

/* ---- helpers --------------------------------------------------------- */

static int ints_of(const cJSON *arr, int32_t *out, int cap)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (n < cap)
            out[n] = (int32_t)e->valuedouble;
        n++;
    }
    return n;
}

static const char *tmp_dir(void)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/sld_test_tok_%ld", (long)getpid());
    return buf;
}

static const char *tmp_file(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmp_dir(), name);
    return buf;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(tmp_file(name), "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *read_all(const char *path)
{
    char *s = NULL;
    sld_file_read(path, (size_t)16 << 20, &s, NULL, NULL);
    return s;
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int load_prompts(const char *raw)
{
    const char *p = raw;
    for (int k = 0; k < N_PROMPTS; k++) {
        p = strstr(p, "\"prompt\": \"");
        if (!p)
            return -1;
        p += 11;
        char *o = malloc(strlen(p) + 1);
        size_t n = 0;
        while (*p && *p != '"') {
            if (*p != '\\') {
                o[n++] = *p++;
                continue;
            }
            char e = p[1];
            p += 2;
            if (e == 'u') {
                unsigned cp = hex4(p);
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + 2) - 0xDC00);
                    p += 6;
                }
                n += put_utf8(o + n, cp);
            } else {
                o[n++] = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b'
                       : e == 'f' ? '\f' : e;
            }
        }
        o[n] = 0;
        prompt_text[k] = o;
        prompt_len[k] = n;
    }
    return 0;
}

/* Captures the last warning logged by the library. */
static char last_warn[1024];
static int n_warn;
static void capture_log(sld_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == SLD_LOG_WARN) {
        snprintf(last_warn, sizeof last_warn, "%s", msg);
        n_warn++;
    }
}

/* ---- goldens --------------------------------------------------------- */

static void check_goldens(const sld_tokenizer *t, const char *which)
{
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(goldens.root, "cases");
    CHECK(cJSON_GetArraySize(cases) == 60);
    int n_ok = 0, n_cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        if (n_cases == N_PROMPTS)
            break;
        n_cases++;
        const char *prompt = prompt_text[n_cases - 1];
        size_t plen = prompt_len[n_cases - 1];
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(c, which);
        int32_t want[SLD_N_CTX], got[SLD_N_CTX];
        CHECK(ints_of(cJSON_GetObjectItemCaseSensitive(g, "ids"), want, SLD_N_CTX) == SLD_N_CTX);
        int32_t unt[512];
        int n_unt = ints_of(cJSON_GetObjectItemCaseSensitive(g, "untruncated_ids"), unt, 512);

        sld_error err;
        int truncated = -1;
        sld_status st = sld_tokenizer_encode_len(t, prompt, plen, got, &truncated, &err);
        CHECK_MSG(st == SLD_OK, "%s case %d: %s", which, n_cases - 1, err.msg);
        int same = st == SLD_OK && !memcmp(got, want, sizeof got);
        if (!same) {
            printf("  %s case %d (%s): ids differ\n", which, n_cases - 1, prompt);
            for (int i = 0; i < SLD_N_CTX; i++)
                if (got[i] != want[i]) {
                    printf("    first at %d: got %d want %d\n", i, got[i], want[i]);
                    break;
                }
        }
        CHECK(same);
        CHECK(truncated == (n_unt > SLD_N_CTX));

        /* untruncated ids and the BPE token strings */
        int32_t *all = NULL;
        size_t n_all = 0;
        CHECK(sld_tokenizer_tokenize(t, prompt, plen, &all, &n_all, &err) == SLD_OK);
        int unt_ok = (int)n_all == n_unt - 2 && unt[0] == sld_tokenizer_bos_id(t) &&
                     unt[n_unt - 1] == sld_tokenizer_eos_id(t);
        for (size_t i = 0; unt_ok && i < n_all; i++)
            unt_ok = all[i] == unt[i + 1];
        CHECK_MSG(unt_ok, "%s case %d: untruncated ids differ", which, n_cases - 1);
        const cJSON *bpe = cJSON_GetObjectItemCaseSensitive(g, "bpe_tokens");
        CHECK((size_t)cJSON_GetArraySize(bpe) == n_all);
        size_t i = 0;
        const cJSON *s;
        cJSON_ArrayForEach(s, bpe)
        {
            const char *tok = i < n_all ? sld_tokenizer_token(t, all[i]) : NULL;
            CHECK_MSG(tok && !strcmp(tok, s->valuestring), "%s case %d token %zu: %s vs %s",
                      which, n_cases - 1, i, tok ? tok : "(null)", s->valuestring);
            i++;
        }
        sld_free(all);
        n_ok += same;
    }
    printf("  %s: %d/%d prompts exact\n", which, n_ok, n_cases);
}

static void test_goldens_sd1(void)
{
    CHECK(sld_tokenizer_pad_id(tok_sd1) == 49407);
    CHECK(sld_tokenizer_bos_id(tok_sd1) == 49406);
    CHECK(sld_tokenizer_eos_id(tok_sd1) == 49407);
    check_goldens(tok_sd1, "sd1");
}

static void test_goldens_sd2(void)
{
    CHECK(sld_tokenizer_pad_id(tok_sd2) == 0);
    check_goldens(tok_sd2, "sd2");
}

static void test_known_prompts(void)
{
    int32_t ids[SLD_N_CTX];
    sld_error err;
    /* "a photo of a cat" */
    CHECK(sld_tokenizer_encode(tok_sd1, "a photo of a cat", ids, NULL, &err) == SLD_OK);
    const int32_t want[] = {49406, 320, 1125, 539, 320, 2368, 49407, 49407};
    CHECK(!memcmp(ids, want, sizeof want));
    /* SD2: "!" is the pad token: never merged, id 0, no </w> */
    CHECK(sld_tokenizer_encode(tok_sd2, "wow!!!", ids, NULL, &err) == SLD_OK);
    CHECK(ids[1] == 2781 && ids[2] == 0 && ids[3] == 0 && ids[4] == 0 && ids[5] == 49407 &&
          ids[6] == 0);
    CHECK(sld_tokenizer_encode(tok_sd1, "wow!!!", ids, NULL, &err) == SLD_OK);
    CHECK(ids[1] == 2781 && ids[2] == 995 && ids[3] == 49407); /* "wow</w>" "!!!</w>" */
    /* Python's lower(): final sigma, and U+0130 -> "i" + U+0307 */
    int32_t a[SLD_N_CTX], b[SLD_N_CTX];
    CHECK(sld_tokenizer_encode(tok_sd1, "\xCE\xA3\xCE\x91\xCE\xA3", a, NULL, &err) == SLD_OK);
    CHECK(sld_tokenizer_encode(tok_sd1, "\xCF\x83\xCE\xB1\xCF\x82", b, NULL, &err) == SLD_OK);
    CHECK(!memcmp(a, b, sizeof a));
    /* embedded NUL bytes are dropped like U+0000 */
    CHECK(sld_tokenizer_encode_len(tok_sd1, "a ph\0oto", 8, a, NULL, &err) == SLD_OK);
    CHECK(sld_tokenizer_encode(tok_sd1, "a photo", b, NULL, &err) == SLD_OK);
    CHECK(!memcmp(a, b, sizeof a));
    /* uppercase special tokens are lower-cased into the specials (bpe cache) */
    CHECK(sld_tokenizer_encode(tok_sd1, "<|ENDOFTEXT|>", a, NULL, &err) == SLD_OK);
    CHECK(a[1] == 49407 && a[2] == 49407);
    /* a pathological word still finishes (BPE on 4000 letters) */
    char *big = sld_malloc(4001);
    for (int i = 0; i < 4000; i++)
        big[i] = (char)('a' + (i * 7) % 26);
    big[4000] = 0;
    int tr = 0;
    sld_log_set(NULL, NULL);
    CHECK(sld_tokenizer_encode(tok_sd1, big, a, &tr, &err) == SLD_OK);
    CHECK(tr == 1 && a[0] == 49406 && a[76] == 49407);
    sld_free(big);
}

static void test_truncation_warning(void)
{
    sld_log_set(capture_log, NULL);
    char text[120 * 4 + 1] = "";
    for (int i = 0; i < 120; i++)
        strcat(text, i ? " cat" : "cat");
    int32_t ids[SLD_N_CTX];
    int tr = 0;
    n_warn = 0;
    CHECK(sld_tokenizer_encode(tok_sd1, text, ids, &tr, NULL) == SLD_OK);
    CHECK(tr == 1);
    CHECK(n_warn == 1);
    CHECK(strstr(last_warn, "truncated") != NULL);
    CHECK_MSG(strstr(last_warn, "45 tokens dropped") != NULL, "%s", last_warn);
    const char *colon = strstr(last_warn, "dropped): ");
    CHECK(colon && !strncmp(colon + 10, "cat cat cat", 11));
    CHECK(ids[75] == 2368 && ids[76] == 49407);
    /* exactly 75 tokens: no warning */
    text[75 * 4 - 1] = 0;
    n_warn = 0;
    CHECK(sld_tokenizer_encode(tok_sd1, text, ids, &tr, NULL) == SLD_OK);
    CHECK(tr == 0 && n_warn == 0 && ids[75] == 2368 && ids[76] == 49407);
    /* a long dropped tail is cut in the message */
    char *big = sld_malloc(4000 * 2 + 1);
    for (int i = 0; i < 4000; i++)
        memcpy(big + 2 * i, "x ", 2);
    big[8000] = 0;
    CHECK(sld_tokenizer_encode(tok_sd1, big, ids, &tr, NULL) == SLD_OK);
    CHECK(strstr(last_warn, "3925 tokens dropped") != NULL);
    CHECK(strlen(last_warn) < 600 && strstr(last_warn, "...") != NULL);
    sld_free(big);
    sld_log_set(NULL, NULL);
}

static void test_invalid_utf8(void)
{
    static const struct {
        const char *s;
        size_t off;
    } bad[] = {
        {"ab\x80", 2},              /* lone continuation byte */
        {"abc\xC3", 3},             /* truncated 2-byte sequence */
        {"\xC0\xAF", 0},            /* overlong '/' */
        {"x\xE0\x80\xAF", 1},       /* overlong 3-byte */
        {"xy\xED\xA0\x80", 2},      /* UTF-16 surrogate */
        {"\xF4\x90\x80\x80", 0},    /* above U+10FFFF */
        {"caf\xE9", 3},             /* Latin-1, not UTF-8 */
        {"ok \xE2\x82", 3},         /* truncated euro sign */
        {"\xFF", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[SLD_N_CTX];
        sld_error err;
        err.msg[0] = 0;
        CHECK(sld_tokenizer_encode(tok_sd1, bad[i].s, ids, NULL, &err) == SLD_ERR_INVALID_ARG);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", bad[i].off);
        CHECK_MSG(strstr(err.msg, "UTF-8") && strstr(err.msg, want), "case %zu: %s", i, err.msg);
    }
    int32_t ids[SLD_N_CTX];
    sld_error err;
    CHECK(sld_tokenizer_encode(tok_sd1, NULL, ids, NULL, &err) == SLD_ERR_INVALID_ARG);
    /* the largest code point and 4-byte sequences are fine */
    CHECK(sld_tokenizer_encode(tok_sd1, "\xF4\x8F\xBF\xBF \xF0\x9F\x98\x80", ids, NULL, &err) ==
          SLD_OK);
}

/* ---- loading --------------------------------------------------------- */

static sld_status load_tmp(sld_tokenizer **t, sld_error *err)
{
    return sld_tokenizer_load_dir(t, tmp_dir(), err);
}

static void test_load_errors(void)
{
    sld_tokenizer *t = NULL;
    sld_error err;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp_dir());
    CHECK(system(cmd) == 0);

    /* missing folder / files */
    CHECK(sld_tokenizer_load_dir(&t, "/nonexistent/tok", &err) != SLD_OK && !t);
    CHECK(strstr(err.msg, "/nonexistent/tok") != NULL);
    CHECK(load_tmp(&t, &err) == SLD_ERR_IO && !t);
    CHECK_MSG(strstr(err.msg, "merges.txt") || strstr(err.msg, "vocab.json"), "%s", err.msg);

    const char *merges_ok = "#version: 0.2\nc a\nca t</w>\n";
    const char *vocab_ok = "{\"a\": 0, \"c\": 1, \"t</w>\": 2, \"ca\": 3, \"cat</w>\": 4, \"!\": 5,"
                           " \"<|startoftext|>\": 6, \"<|endoftext|>\": 7}";
    write_file("merges.txt", merges_ok);
    CHECK(load_tmp(&t, &err) == SLD_ERR_IO && strstr(err.msg, "vocab.json"));

    /* corrupt vocab.json */
    write_file("vocab.json", "{\"a\": 0, \"b\": ");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && !t);
    CHECK_MSG(strstr(err.msg, "vocab.json") && strstr(err.msg, "JSON"), "%s", err.msg);
    write_file("vocab.json", "[1, 2]");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "object"));
    write_file("vocab.json", "{\"a\": \"zero\"}");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "\"a\""));
    write_file("vocab.json", "{\"a\": 1.5}");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT);
    write_file("vocab.json", "{\"a\": -1}");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT);
    write_file("vocab.json", "{\"a\": 0, \"<|startoftext|>\": 1}");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "<|endoftext|>"));

    /* a valid tiny vocabulary */
    write_file("vocab.json", vocab_ok);
    CHECK_MSG(load_tmp(&t, &err) == SLD_OK, "%s", err.msg);
    if (t) {
        int32_t ids[SLD_N_CTX];
        CHECK(sld_tokenizer_encode(t, "cat", ids, NULL, &err) == SLD_OK);
        CHECK(ids[0] == 6 && ids[1] == 4 && ids[2] == 7 && ids[3] == 7);
        /* bytes without a vocab entry become unk (= <|endoftext|>) */
        CHECK(sld_tokenizer_encode(t, "cx", ids, NULL, &err) == SLD_OK);
        CHECK(ids[1] == 1 && ids[2] == 7 && ids[3] == 7);
        CHECK(sld_tokenizer_pad_id(t) == 7);
        sld_tokenizer_free(t);
        t = NULL;
    }

    /* malformed merges lines */
    write_file("merges.txt", "#version: 0.2\nc a\nca t</w> x\n");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && !t);
    CHECK_MSG(strstr(err.msg, "merges.txt") && strstr(err.msg, "line 3"), "%s", err.msg);
    write_file("merges.txt", "#version: 0.2\nc a\nlonely\nca t</w>\n");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "line 3"));
    write_file("merges.txt", "#version: 0.2\nc a\n\nca t</w>\n");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "line 3"));
    write_file("merges.txt", "");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "empty"));
    /* CRLF line ends are fine (str.split drops the \r) */
    write_file("merges.txt", "#version: 0.2\r\nc a\r\nca t</w>\r\n");
    CHECK(load_tmp(&t, &err) == SLD_OK);
    if (t) {
        int32_t ids[SLD_N_CTX];
        CHECK(sld_tokenizer_encode(t, "cat", ids, NULL, &err) == SLD_OK && ids[1] == 4);
        sld_tokenizer_free(t);
        t = NULL;
    }
    write_file("merges.txt", merges_ok);

    /* pad token: special_tokens_map.json (string or object), then
     * tokenizer_config.json, then the default */
    write_file("tokenizer_config.json", "{\"pad_token\": {\"__type\": \"AddedToken\", \"content\": \"!\"}}");
    CHECK(load_tmp(&t, &err) == SLD_OK && t && sld_tokenizer_pad_id(t) == 5);
    sld_tokenizer_free(t);
    t = NULL;
    write_file("special_tokens_map.json", "{\"pad_token\": \"<|endoftext|>\"}");
    CHECK(load_tmp(&t, &err) == SLD_OK && t && sld_tokenizer_pad_id(t) == 7);
    sld_tokenizer_free(t);
    t = NULL;
    write_file("special_tokens_map.json", "{\"pad_token\": {\"content\": \"!\"}}");
    CHECK(load_tmp(&t, &err) == SLD_OK && t && sld_tokenizer_pad_id(t) == 5);
    if (t) {
        int32_t ids[SLD_N_CTX];
        CHECK(sld_tokenizer_encode(t, "cat!cat", ids, NULL, &err) == SLD_OK);
        CHECK(ids[1] == 4 && ids[2] == 5 && ids[3] == 4 && ids[4] == 7 && ids[5] == 5);
    }
    sld_tokenizer_free(t);
    t = NULL;
    write_file("special_tokens_map.json", "{\"pad_token\": \"zzz\"}");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "zzz"));
    write_file("special_tokens_map.json", "{\"pad_token\": 3}");
    CHECK(load_tmp(&t, &err) == SLD_ERR_CONFIG && strstr(err.msg, "pad_token"));
    write_file("special_tokens_map.json", "{\"pad_token\": ");
    CHECK(load_tmp(&t, &err) == SLD_ERR_FORMAT && strstr(err.msg, "special_tokens_map.json"));
    CHECK(!t);

    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir());
    CHECK(system(cmd) == 0);
}

static void test_alloc_failures(void)
{
    /* every allocation of an encode call may fail: clean error, no leak */
    const char *prompt = "Caf\xC3\xA9 ΣΑΣ 日本 <|endoftext|> a photo of an astronaut, 8k!!!";
    int32_t want[SLD_N_CTX], ids[SLD_N_CTX];
    CHECK(sld_tokenizer_encode(tok_sd2, prompt, want, NULL, NULL) == SLD_OK);
    int ok = 0, n;
    for (n = 1; n < 200 && !ok; n++) {
        sld_error err;
        sld_alloc_fail_at(n);
        sld_status st = sld_tokenizer_encode(tok_sd2, prompt, ids, NULL, &err);
        sld_alloc_fail_at(0);
        if (st == SLD_OK)
            ok = !memcmp(ids, want, sizeof ids);
        else
            CHECK_MSG(st == SLD_ERR_NOMEM, "fail at %d: %s", n, err.msg);
    }
    CHECK(ok);
    /* loading, too */
    char vocab[512], merges[512];
    snprintf(vocab, sizeof vocab, "%s", fixture("models/tiny-sd1/tokenizer/vocab.json"));
    snprintf(merges, sizeof merges, "%s", fixture("models/tiny-sd1/tokenizer/merges.txt"));
    ok = 0;
    for (n = 1; n < 400 && !ok; n++) {
        sld_tokenizer *t = NULL;
        sld_error err;
        sld_alloc_fail_at(n);
        sld_status st = sld_tokenizer_load(&t, vocab, merges, "!", &err);
        sld_alloc_fail_at(0);
        if (st == SLD_OK) {
            ok = 1;
            CHECK(sld_tokenizer_encode(t, prompt, ids, NULL, NULL) == SLD_OK);
            CHECK(!memcmp(ids, want, sizeof ids));
            sld_tokenizer_free(t);
        } else {
            CHECK(!t);
        }
    }
    CHECK(ok);
}

static void test_threads(void)
{
    /* one const tokenizer, many threads: same ids as serial */
    const int n = N_PROMPTS;
    int32_t serial[N_PROMPTS][SLD_N_CTX], par[N_PROMPTS][SLD_N_CTX];
    for (int i = 0; i < n; i++)
        sld_tokenizer_encode_len(tok_sd2, prompt_text[i], prompt_len[i], serial[i], NULL, NULL);
    int bad = 0;
#pragma omp parallel for num_threads(4) schedule(dynamic) reduction(+ : bad)
    for (int k = 0; k < 4 * n; k++) {
        int i = k % n;
        if (sld_tokenizer_encode_len(tok_sd2, prompt_text[i], prompt_len[i], par[i], NULL,
                                     NULL) != SLD_OK ||
            memcmp(par[i], serial[i], sizeof par[i]))
            bad++;
    }
    CHECK(bad == 0);
}

static void test_data_clip_matches(void)
{
    /* the vocabulary shipped for single-file checkpoints is the fixtures' one */
    char *a = read_all("data/clip/vocab.json");
    char *b = read_all(fixture("models/tiny-sd1/tokenizer/vocab.json"));
    CHECK(a && b && !strcmp(a, b));
    sld_free(a);
    sld_free(b);
    a = read_all("data/clip/merges.txt");
    b = read_all(fixture("models/tiny-sd1/tokenizer/merges.txt"));
    CHECK(a && b && !strcmp(a, b));
    sld_free(a);
    sld_free(b);
}

int main(void)
{
    sld_error err;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", fixture("models/tiny-sd1/tokenizer"));
    if (sld_tokenizer_load_dir(&tok_sd1, dir, &err) != SLD_OK) {
        printf("FAIL load sd1: %s\n", err.msg);
        return 1;
    }
    snprintf(dir, sizeof dir, "%s", fixture("models/tiny-sd2/tokenizer"));
    if (sld_tokenizer_load_dir(&tok_sd2, dir, &err) != SLD_OK) {
        printf("FAIL load sd2: %s\n", err.msg);
        return 1;
    }
    char *raw = read_all(fixture("tokenizer/tokenizer.json"));
    if (!raw || sld_json_parse(&goldens, raw, "tokenizer.json", &err) != SLD_OK ||
        load_prompts(raw)) {
        printf("FAIL goldens: %s\n", raw ? err.msg : "cannot read tokenizer.json");
        return 1;
    }
    sld_free(raw);
    RUN(test_goldens_sd1);
    RUN(test_goldens_sd2);
    RUN(test_known_prompts);
    RUN(test_truncation_warning);
    RUN(test_invalid_utf8);
    RUN(test_load_errors);
    RUN(test_alloc_failures);
    RUN(test_threads);
    RUN(test_data_clip_matches);
    sld_json_free(&goldens);
    for (int k = 0; k < N_PROMPTS; k++)
        free(prompt_text[k]);
    sld_tokenizer_free(tok_sd1);
    sld_tokenizer_free(tok_sd2);
    TEST_END();
}
