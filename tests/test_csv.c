/* test_csv.c — the RFC 4180 reader: quoting, CRLF, BOM, embedded newlines,
 * and errors that name the line. */
#include "io/csv.h"
#include "test.h"

/* Parses text into out (up to max_rec records of up to 8 fields). Returns the
 * record count, or -1 with *err set. */
static int parse_all(const char *text, size_t len, char out[][8][64], int *nf, int max_rec,
                     int *lines, sld_error *err)
{
    sld_csv c;
    sld_csv_init(&c, text, len, "t.csv");
    int n = 0, more;
    sld_status st;
    while ((st = sld_csv_next(&c, &more, err)) == SLD_OK && more && n < max_rec) {
        nf[n] = c.n_fields;
        if (lines)
            lines[n] = c.line;
        for (int i = 0; i < c.n_fields && i < 8; i++)
            snprintf(out[n][i], 64, "%s", c.fields[i]);
        n++;
    }
    sld_csv_free(&c);
    return st ? -1 : n;
}

static void test_simple(void)
{
    char f[4][8][64];
    int nf[4];
    const char *t = "a,b,c\n1,,3\n";
    CHECK(parse_all(t, strlen(t), f, nf, 4, NULL, NULL) == 2);
    CHECK(nf[0] == 3 && nf[1] == 3);
    CHECK(!strcmp(f[0][0], "a") && !strcmp(f[0][2], "c"));
    CHECK(!strcmp(f[1][1], "") && !strcmp(f[1][2], "3"));
}

static void test_quotes_commas_newlines_crlf_bom(void)
{
    char f[4][8][64];
    int nf[4], lines[4];
    const char *t = "\xEF\xBB\xBFprompt,categories\r\n"
                    "\"a, b\",\"x \"\"y\"\"\"\r\n"
                    "\"two\nlines\",\"hate, sexual\"\r\n"
                    "last,\r\n";
    CHECK(parse_all(t, strlen(t), f, nf, 4, lines, NULL) == 4);
    CHECK(!strcmp(f[0][0], "prompt")); /* BOM stripped */
    CHECK(!strcmp(f[1][0], "a, b"));
    CHECK(!strcmp(f[1][1], "x \"y\""));
    CHECK(!strcmp(f[2][0], "two\nlines"));
    CHECK(!strcmp(f[2][1], "hate, sexual"));
    CHECK(nf[3] == 2 && !strcmp(f[3][0], "last") && !strcmp(f[3][1], ""));
    CHECK(lines[0] == 1 && lines[1] == 2 && lines[2] == 3 && lines[3] == 5);
}

static void test_no_final_newline_and_blank_lines(void)
{
    char f[4][8][64];
    int nf[4];
    const char *t = "a\n\n\nb,\"c\"";
    CHECK(parse_all(t, strlen(t), f, nf, 4, NULL, NULL) == 2);
    CHECK(nf[1] == 2 && !strcmp(f[1][1], "c"));
    CHECK(parse_all("", 0, f, nf, 4, NULL, NULL) == 0);
}

static void test_embedded_nul_length(void)
{
    /* A NUL byte is refused rather than silently truncating a field. */
    char f[2][8][64];
    int nf[2];
    const char t[] = "a,b\nx\0y,z\n";
    sld_error err;
    CHECK(parse_all(t, sizeof t - 1, f, nf, 2, NULL, &err) < 0);
    CHECK(strstr(err.msg, "line 2") != NULL);
}

static void test_errors_name_line(void)
{
    char f[4][8][64];
    int nf[4];
    sld_error err;
    const char *bad1 = "a,b\n1,2\n3,x\"y\n";
    CHECK(parse_all(bad1, strlen(bad1), f, nf, 4, NULL, &err) < 0);
    CHECK(err.code == SLD_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "t.csv: line 3") != NULL, "%s", err.msg);
    const char *bad2 = "a,b\n\"open,2\n3,4\n";
    CHECK(parse_all(bad2, strlen(bad2), f, nf, 4, NULL, &err) < 0);
    CHECK_MSG(strstr(err.msg, "line 2") && strstr(err.msg, "not closed"), "%s", err.msg);
    const char *bad3 = "a,b\r\n1,2\r\n\"q\"x,4\r\n";
    CHECK(parse_all(bad3, strlen(bad3), f, nf, 4, NULL, &err) < 0);
    CHECK_MSG(strstr(err.msg, "line 3") && strstr(err.msg, "closing quote"), "%s", err.msg);
}

static void test_oom(void)
{
    const char *t = "\"a, b\",\"x \"\"y\"\"\"\nc,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t\n";
    for (long k = 1; k < 20; k++) {
        sld_error err;
        char f[4][8][64];
        int nf[4];
        sld_alloc_fail_at(k);
        int n = parse_all(t, strlen(t), f, nf, 4, NULL, &err);
        sld_alloc_fail_at(0);
        CHECK(n == 2 || (n < 0 && err.code == SLD_ERR_NOMEM));
    }
}

int main(void)
{
    RUN(test_simple);
    RUN(test_quotes_commas_newlines_crlf_bom);
    RUN(test_no_final_newline_and_blank_lines);
    RUN(test_embedded_nul_length);
    RUN(test_errors_name_line);
    RUN(test_oom);
    TEST_END();
}
