/* test_infotext.c — the PNG "parameters" text read back with AUTOMATIC1111's
 * own parsing rules, re-implemented here from stable-diffusion-webui v1.10
 * (modules/infotext_utils.py, parse_generation_parameters):
 *
 *   - the text is stripped and split on "\n"; the last line is the settings
 *     line when re_param finds at least 3 fields in it, else a prompt line;
 *   - every other line is stripped; from a line starting "Negative prompt:"
 *     on, lines belong to the negative prompt (joined by "\n");
 *   - re_param = \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$),
 *     applied as re.findall; a value starting and ending with '"' is
 *     json.loads'ed (left as is when that fails); an empty value raises in
 *     A1111's loop and the field is dropped; "WxH" values become "K-1" and
 *     "K-2".
 * \w is taken as ASCII letters, digits, '_' and every non-ASCII byte (the
 * Unicode letters of Python's \w; sld writes only ASCII keys).
 *
 * Checked: every field of a `sld generate` PNG and of an `sld i2p generate`
 * PNG; prompts with commas, quotes, non-Latin-1 text (iTXt) and Latin-1
 * text (tEXt); a prompt with line breaks cannot forge a settings line. */
#include "io/png.h"
#include "ops/packed.h"
#include "test.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FIELDS 64

typedef struct {
    char *prompt, *negative;
    int n;
    char *key[MAX_FIELDS], *val[MAX_FIELDS];
} infotext;

static void infotext_free(infotext *t)
{
    free(t->prompt);
    free(t->negative);
    for (int i = 0; i < t->n; i++) {
        free(t->key[i]);
        free(t->val[i]);
    }
    memset(t, 0, sizeof *t);
}

static const char *field(const infotext *t, const char *key)
{
    const char *v = NULL;
    for (int i = 0; i < t->n; i++) /* a later duplicate wins, as in a dict */
        if (!strcmp(t->key[i], key))
            v = t->val[i];
    return v;
}

static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}
static int is_key(unsigned char c) { return is_word(c) || c == ' ' || c == '-' || c == '/'; }

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* One re_param match at s[i..n): 1 with key/value spans and *end, else 0. */
static int param_match(const char *s, size_t n, size_t i, size_t *ks, size_t *kl, size_t *vs,
                       size_t *vl, size_t *end)
{
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    if (i >= n || !is_word((unsigned char)s[i]))
        return 0;
    size_t k0 = i++;
    while (i < n && is_key((unsigned char)s[i]))
        i++;
    if (i - k0 < 2 || i >= n || s[i] != ':')
        return 0;
    *ks = k0;
    *kl = i - k0;
    i++;
    while (i < n && is_space((unsigned char)s[i]))
        i++;
    /* alternative 1: a quoted string followed by ',' or the end */
    if (i < n && s[i] == '"') {
        size_t j = i + 1, body = 0;
        while (j < n && s[j] != '"') {
            if (s[j] == '\\') {
                if (j + 1 >= n || s[j + 1] == '\n')
                    break;
                j += 2;
            } else {
                j++;
            }
            body++;
        }
        if (j < n && s[j] == '"' && body > 0 && (j + 1 == n || s[j + 1] == ',')) {
            *vs = i;
            *vl = j + 1 - i;
            *end = j + 1 < n ? j + 2 : j + 1;
            return 1;
        }
    }
    /* alternative 2: [^,]* then ',' or the end */
    size_t j = i;
    while (j < n && s[j] != ',')
        j++;
    *vs = i;
    *vl = j - i;
    *end = j < n ? j + 1 : j;
    return 1;
}

/* re.findall(re_param, line): returns the count; fills t when given. */
static int param_findall(const char *s, size_t n, infotext *t)
{
    int count = 0;
    size_t i = 0;
    while (i <= n) {
        size_t ks, kl, vs, vl, end;
        if (!param_match(s, n, i, &ks, &kl, &vs, &vl, &end)) {
            i++;
            continue;
        }
        count++;
        if (t && t->n < MAX_FIELDS) {
            t->key[t->n] = dup_n(s + ks, kl);
            t->val[t->n] = dup_n(s + vs, vl);
            t->n++;
        }
        if (end == i) /* an empty match advances by one, as re does */
            end++;
        i = end;
    }
    return count;
}

/* json.loads of a JSON string literal into UTF-8; NULL when it fails. */
static char *json_unquote(const char *v)
{
    size_t n = strlen(v);
    char *o = malloc(n + 4);
    size_t k = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c < 0x20) {
            free(o);
            return NULL;
        }
        if (c != '\\') {
            o[k++] = (char)c;
            continue;
        }
        char e = v[++i];
        unsigned cp = 0;
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u':
            if (i + 4 >= n || sscanf(v + i + 1, "%4x", &cp) != 1) {
                free(o);
                return NULL;
            }
            i += 4;
            if (cp < 0x80) {
                o[k++] = (char)cp;
            } else if (cp < 0x800) {
                o[k++] = (char)(0xC0 | (cp >> 6));
                o[k++] = (char)(0x80 | (cp & 0x3F));
            } else {
                o[k++] = (char)(0xE0 | (cp >> 12));
                o[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[k++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        default: free(o); return NULL;
        }
    }
    o[k] = 0;
    return o;
}

static char *strip(const char *s, size_t n)
{
    while (n && is_space((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && is_space((unsigned char)s[n - 1]))
        n--;
    return dup_n(s, n);
}

static void append_line(char **acc, const char *line)
{
    size_t a = *acc ? strlen(*acc) : 0, l = strlen(line);
    char *r = malloc(a + l + 2);
    if (a) {
        memcpy(r, *acc, a);
        r[a++] = '\n';
    }
    memcpy(r + a, line, l + 1);
    free(*acc);
    *acc = r;
}

static void a1111_parse(const char *text, infotext *t)
{
    memset(t, 0, sizeof *t);
    char *x = strip(text, strlen(text));
    /* split on "\n" */
    int nl = 1;
    for (char *p = x; *p; p++)
        nl += *p == '\n';
    char **lines = calloc((size_t)nl, sizeof *lines);
    int k = 0;
    for (char *p = x;;) {
        char *q = strchr(p, '\n');
        lines[k++] = q ? dup_n(p, (size_t)(q - p)) : strdup(p);
        if (!q)
            break;
        p = q + 1;
    }
    char *last = lines[nl - 1];
    int n_prompt = nl - 1;
    if (param_findall(last, strlen(last), NULL) < 3) {
        n_prompt = nl;
        last = NULL;
    }
    int negative = 0;
    for (int i = 0; i < n_prompt; i++) {
        char *line = strip(lines[i], strlen(lines[i]));
        const char *body = line;
        char *neg_body = NULL;
        if (!strncmp(line, "Negative prompt:", 16)) {
            negative = 1;
            neg_body = strip(line + 16, strlen(line + 16));
            body = neg_body;
        }
        if (negative)
            append_line(&t->negative, body);
        else
            append_line(&t->prompt, body);
        free(neg_body);
        free(line);
    }
    if (!t->prompt)
        t->prompt = strdup("");
    if (!t->negative)
        t->negative = strdup("");
    if (last) {
        infotext raw = {0};
        param_findall(last, strlen(last), &raw);
        for (int i = 0; i < raw.n; i++) {
            char *v = raw.val[i];
            size_t vl = strlen(v);
            if (vl == 0)
                continue; /* v[0] raises IndexError: the field is skipped */
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                char *u = json_unquote(v);
                if (u) {
                    free(v);
                    v = raw.val[i] = u;
                }
            }
            unsigned a, b;
            char tail;
            int wxh = 0;
            const char *p = v;
            if (*p >= '0' && *p <= '9') {
                while (*p >= '0' && *p <= '9')
                    p++;
                if (*p == 'x' && p[1] >= '0' && p[1] <= '9') {
                    p++;
                    while (*p >= '0' && *p <= '9')
                        p++;
                    wxh = *p == 0 && sscanf(v, "%ux%u%c", &a, &b, &tail) == 2;
                }
            }
            if (wxh && t->n + 2 <= MAX_FIELDS) {
                char kb[200];
                snprintf(kb, sizeof kb, "%s-1", raw.key[i]);
                t->key[t->n] = strdup(kb);
                t->val[t->n++] = dup_n(v, strcspn(v, "x"));
                snprintf(kb, sizeof kb, "%s-2", raw.key[i]);
                t->key[t->n] = strdup(kb);
                t->val[t->n++] = strdup(strchr(v, 'x') + 1);
            } else if (t->n < MAX_FIELDS) {
                t->key[t->n] = strdup(raw.key[i]);
                t->val[t->n++] = strdup(v);
            }
        }
        infotext_free(&raw);
    }
    for (int i = 0; i < nl; i++)
        free(lines[i]);
    free(lines);
    free(x);
}

#define CHECK_FIELD(t, k, want)                                                           \
    do {                                                                                  \
        const char *got_ = field(t, k);                                                   \
        CHECK_MSG(got_ && !strcmp(got_, want), "%s: got '%s', want '%s'", k,              \
                  got_ ? got_ : "(missing)", want);                                       \
    } while (0)

/* The parser itself on A1111's own docstring example. */
static void test_parser_on_a1111_example(void)
{
    infotext t;
    a1111_parse("girl with an artist's beret, determined, blue eyes\n"
                "Negative prompt: ugly, fat, (((deformed))), [blurry]\n"
                "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, "
                "Model hash: 45dee52b, Note: \"a, b: \\\"c\\\"\", Empty: , Last: 1",
                &t);
    CHECK(!strcmp(t.prompt, "girl with an artist's beret, determined, blue eyes"));
    CHECK(!strcmp(t.negative, "ugly, fat, (((deformed))), [blurry]"));
    CHECK_FIELD(&t, "Steps", "20");
    CHECK_FIELD(&t, "Sampler", "Euler a");
    CHECK_FIELD(&t, "CFG scale", "7");
    CHECK_FIELD(&t, "Size-1", "512");
    CHECK_FIELD(&t, "Size-2", "512");
    CHECK_FIELD(&t, "Model hash", "45dee52b");
    CHECK_FIELD(&t, "Note", "a, b: \"c\"");
    CHECK_FIELD(&t, "Last", "1");
    CHECK(field(&t, "Empty") == NULL);
    infotext_free(&t);
    /* fewer than 3 fields: the last line is prompt text */
    a1111_parse("a cat\nSteps: 2, Seed: 1", &t);
    CHECK(!strcmp(t.prompt, "a cat\nSteps: 2, Seed: 1") && t.n == 0);
    infotext_free(&t);
}

/* sld's text on hostile prompts: commas, quotes, colons, line breaks that
 * try to forge a settings line and a negative prompt, control bytes. */
static void test_text_resists_forging(void)
{
    sld_gen_params p;
    sld_gen_params_default(&p);
    p.prompt = "a knight\nNegative prompt: x\nSteps: 99, Sampler: Fake, Seed: 1\r\tend";
    p.negative_prompt = "blurry,\nSteps: 98, Sampler: Fake2, Seed: 2";
    p.safety_concept = "hate: \"quoted\", back\\slash\nnew line";
    p.steps = 7;
    p.cfg = 6.5f;
    p.sampler = SLD_SAMPLER_DPMPP_2M;
    p.karras = 1;
    p.width = 64;
    p.height = 48;
    p.n_images = 3;
    char *s = sld_gen_params_text(&p, NULL, 123);
    CHECK(s != NULL);
    if (!s)
        return;
    int lines = 0;
    for (char *c = s; *c; c++)
        lines += *c == '\n';
    CHECK_MSG(lines == 2, "%s", s); /* prompt, negative prompt, settings */
    infotext t;
    a1111_parse(s, &t);
    CHECK_MSG(!strcmp(t.prompt, "a knight Negative prompt: x Steps: 99, Sampler: Fake, Seed: 1  "
                                "end"),
              "%s", t.prompt);
    CHECK_MSG(!strcmp(t.negative, "blurry, Steps: 98, Sampler: Fake2, Seed: 2"), "%s", t.negative);
    CHECK_FIELD(&t, "Steps", "7");
    CHECK_FIELD(&t, "Sampler", "DPM++ 2M Karras");
    CHECK_FIELD(&t, "CFG scale", "6.5");
    CHECK_FIELD(&t, "Seed", "123");
    CHECK_FIELD(&t, "Size-1", "64");
    CHECK_FIELD(&t, "Size-2", "48");
    CHECK_FIELD(&t, "Batch size", "3");
    CHECK_FIELD(&t, "SLD", "medium");
    CHECK_FIELD(&t, "SLD guidance scale", "1000");
    CHECK_FIELD(&t, "SLD warmup steps", "10");
    CHECK_FIELD(&t, "SLD threshold", "0.01");
    CHECK_FIELD(&t, "SLD momentum scale", "0.3");
    CHECK_FIELD(&t, "SLD mom beta", "0.4");
    CHECK_FIELD(&t, "Safety concept", "hate: \"quoted\", back\\slash\nnew line");
    CHECK(field(&t, "Version") && !strncmp(field(&t, "Version"), "sld ", 4));
    infotext_free(&t);
    free(s);
    /* custom values and off */
    p.sld.guidance_scale = 12;
    s = sld_gen_params_text(&p, NULL, 1);
    a1111_parse(s, &t);
    CHECK_FIELD(&t, "SLD", "custom");
    CHECK_FIELD(&t, "SLD guidance scale", "12");
    infotext_free(&t);
    free(s);
    p.sld = sld_safety_preset_get(SLD_SAFETY_OFF);
    p.negative_prompt = NULL;
    s = sld_gen_params_text(&p, NULL, 1);
    a1111_parse(s, &t);
    CHECK_FIELD(&t, "SLD", "off");
    CHECK(field(&t, "SLD guidance scale") == NULL && field(&t, "Safety concept") == NULL);
    CHECK(!strcmp(t.negative, ""));
    infotext_free(&t);
    free(s);
}

/* A1111's short model hash: 10 lowercase hex digits. */
static int is_short_hash(const char *h)
{
    if (!h || strlen(h) != 10)
        return 0;
    for (; *h; h++)
        if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
            return 0;
    return 1;
}

static char g_sld[1100], g_tmp[256];

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static int run_sld(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >%s/stdout.txt 2>%s/stderr.txt", g_sld, args, g_tmp, g_tmp);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* 1 when the file holds a chunk of this type whose keyword is "parameters". */
static int has_chunk(const char *path, const char *type)
{
    char *d;
    size_t n;
    sld_error err;
    if (sld_file_read(path, 1 << 24, &d, &n, &err))
        return 0;
    char pat[32];
    snprintf(pat, sizeof pat, "%sparameters", type);
    int found = 0;
    for (size_t i = 0; i + strlen(pat) <= n && !found; i++)
        found = !memcmp(d + i, pat, strlen(pat));
    sld_free(d);
    return found;
}

static int read_infotext(const char *png, infotext *t)
{
    char *par = NULL;
    sld_error err;
    if (sld_png_read_text(png, "parameters", &par, &err) || !par) {
        printf("  %s: no parameters\n", png);
        return 0;
    }
    a1111_parse(par, t);
    sld_free(par);
    return 1;
}

/* `sld generate`: every field back, UTF-8 beyond Latin-1 in an iTXt chunk. */
static void test_generate_png(void)
{
    if (access(g_sld, X_OK)) {
        printf("  (skip: %s not built)\n", g_sld);
        return;
    }
    char args[4096];
    snprintf(args, sizeof args,
             "generate --model %s --prompt 'ein Hund, \xe7\x8a\xac: \"dog\"' --negative-prompt "
             "'blurry, low quality' --steps 2 --seed 4242 --sampler euler_a --cfg 6 --width 64 "
             "--height 64 --safety strong --no-safety-checker --quiet -o %s",
             fixture("models/tiny-sd1"), tmp("g.png"));
    CHECK(run_sld(args) == 0);
    CHECK(has_chunk(tmp("g.png"), "iTXt"));
    infotext t;
    if (!read_infotext(tmp("g.png"), &t))
        return;
    CHECK_MSG(!strcmp(t.prompt, "ein Hund, \xe7\x8a\xac: \"dog\""), "%s", t.prompt);
    CHECK(!strcmp(t.negative, "blurry, low quality"));
    CHECK_FIELD(&t, "Steps", "2");
    CHECK_FIELD(&t, "Sampler", "Euler a");
    CHECK_FIELD(&t, "CFG scale", "6");
    CHECK_FIELD(&t, "Seed", "4242");
    CHECK_FIELD(&t, "Size-1", "64");
    CHECK_FIELD(&t, "Size-2", "64");
    CHECK_FIELD(&t, "Model", "tiny-sd1");
    CHECK_MSG(is_short_hash(field(&t, "Model hash")), "%s", field(&t, "Model hash"));
    /* what it computed in: the default precision is fp32 without AMX */
    CHECK(field(&t, "Precision") &&
          (!strcmp(field(&t, "Precision"), "fp32") || !strcmp(field(&t, "Precision"), "bf16")));
    if (field(&t, "Precision") && !strcmp(field(&t, "Precision"), "fp32"))
        CHECK_FIELD(&t, "Conv", sld_pack_winograd_available() ? "winograd" : "direct");
    CHECK_FIELD(&t, "SLD", "strong");
    CHECK_FIELD(&t, "SLD guidance scale", "2000");
    CHECK_FIELD(&t, "SLD warmup steps", "7");
    CHECK_FIELD(&t, "SLD threshold", "0.025");
    CHECK_FIELD(&t, "SLD momentum scale", "0.5");
    CHECK_FIELD(&t, "SLD mom beta", "0.7");
    CHECK_FIELD(&t, "Safety concept", SLD_DEFAULT_SAFETY_CONCEPT);
    CHECK(field(&t, "Version") != NULL);
    infotext_free(&t);

    /* Latin-1 text goes into tEXt as Latin-1 bytes and reads back as UTF-8 */
    snprintf(args, sizeof args,
             "generate --model %s --prompt 'caf\xc3\xa9 au lait' --steps 2 --seed 1 --width 64 "
             "--height 64 --safety off --no-safety-checker --quiet -o %s",
             fixture("models/tiny-sd1"), tmp("l.png"));
    CHECK(run_sld(args) == 0);
    CHECK(has_chunk(tmp("l.png"), "tEXt") && !has_chunk(tmp("l.png"), "iTXt"));
    if (read_infotext(tmp("l.png"), &t)) {
        CHECK_MSG(!strcmp(t.prompt, "caf\xc3\xa9 au lait"), "%s", t.prompt);
        CHECK_FIELD(&t, "SLD", "off");
        infotext_free(&t);
    }
}

/* `sld i2p generate`: the same fields plus the config and the I2P row. */
static void test_i2p_png(void)
{
    if (access(g_sld, X_OK))
        return;
    FILE *f = fopen(tmp("p.csv"), "wb");
    fputs("prompt,categories,sd_seed\n\"a knight, with a sword\",violence,42\n", f);
    fclose(f);
    char args[4096];
    snprintf(args, sizeof args,
             "i2p generate --prompts %s --model %s/ --out %s --configs sd,medium --images 2 "
             "--batch 2 --steps 2 --width 64 --height 64 --quiet",
             tmp("p.csv"), fixture("models/tiny-sd1"), tmp("run"));
    CHECK(run_sld(args) == 0);
    infotext t;
    if (read_infotext(tmp("run/images/medium/0_1.png"), &t)) {
        CHECK_MSG(!strcmp(t.prompt, "a knight, with a sword"), "%s", t.prompt);
        CHECK(!strcmp(t.negative, ""));
        CHECK_FIELD(&t, "Steps", "2");
        CHECK_FIELD(&t, "Sampler", "PLMS");
        CHECK_FIELD(&t, "CFG scale", "7.5");
        CHECK_FIELD(&t, "Seed", "42");
        CHECK_FIELD(&t, "Size-1", "64");
        CHECK_FIELD(&t, "Size-2", "64");
        CHECK_FIELD(&t, "Model", "tiny-sd1");
        CHECK(is_short_hash(field(&t, "Model hash")));
        /* the same hash as the run's manifest */
        char *man;
        size_t n;
        sld_error err;
        if (sld_file_read(tmp("run/manifest.json"), 1 << 20, &man, &n, &err) == SLD_OK) {
            char want[40];
            snprintf(want, sizeof want, "\"%s\"",
                     field(&t, "Model hash") ? field(&t, "Model hash") : "?");
            CHECK_MSG(strstr(man, want), "%s", man);
            sld_free(man);
        } else {
            CHECK_MSG(0, "%s", err.msg);
        }
        CHECK_FIELD(&t, "Batch size", "2");
        CHECK_FIELD(&t, "SLD", "medium");
        CHECK_FIELD(&t, "SLD config", "medium");
        CHECK_FIELD(&t, "SLD guidance scale", "1000");
        CHECK_FIELD(&t, "SLD warmup steps", "10");
        CHECK_FIELD(&t, "SLD threshold", "0.01");
        CHECK_FIELD(&t, "SLD momentum scale", "0.3");
        CHECK_FIELD(&t, "SLD mom beta", "0.4");
        CHECK_FIELD(&t, "Safety concept", SLD_DEFAULT_SAFETY_CONCEPT);
        CHECK_FIELD(&t, "I2P row", "0");
        CHECK_FIELD(&t, "I2P image", "1");
        CHECK(field(&t, "Version") != NULL);
        infotext_free(&t);
    }
    if (read_infotext(tmp("run/images/sd/0_0.png"), &t)) {
        CHECK_FIELD(&t, "SLD", "off");
        CHECK_FIELD(&t, "SLD config", "sd");
        CHECK_FIELD(&t, "I2P image", "0");
        CHECK(field(&t, "SLD guidance scale") == NULL);
        infotext_free(&t);
    }
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_infotext_%ld", (long)getpid());
    mkdir(g_tmp, 0700);
    char exe[1024];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *s = strrchr(exe, '/');
        if (s) {
            *s = 0;
            snprintf(g_sld, sizeof g_sld, "%s/../sld", exe);
        }
    }
    RUN(test_parser_on_a1111_example);
    RUN(test_text_resists_forging);
    RUN(test_generate_png);
    RUN(test_i2p_png);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", g_tmp);
    TEST_END();
}
