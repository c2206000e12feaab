/* test_jpeg.c — JPEG decoding against goldens from decoders that are not
 * sld's (Pillow's convert("RGB") and `djpeg -dct int`, which agree byte for
 * byte: tools/make_jpeg_fixtures.sh), in every coding mode of the fixtures
 * (baseline 4:2:0 / 4:2:2 / 4:4:4, gray, progressive, restart markers,
 * arithmetic, RGB, Adobe CMYK, YCCK); format sniffing by content in
 * sld_image_read; damaged-but-decodable data decoded as Pillow decodes it
 * (Pillow goldens); and the error paths: truncated, garbage, other formats,
 * absurd dimensions, too many scans, missing files. */
#include "io/image.h"
#include "io/jpeg.h"
#include "io/png.h"
#include "test.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JDIR "jpeg/"
static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static uint8_t *load(const char *rel, size_t *n)
{
    char *s = NULL;
    if (sld_file_read(fixture(rel), 1 << 20, &s, n, NULL))
        return NULL;
    return (uint8_t *)s;
}

static int save(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n;
}

static void sha_hex(const uint8_t *p, size_t n, char hex[65])
{
    sld_sha256_str(p, n, hex);
}

/* Every fixture decodes to exactly the golden pixels, through both entry
 * points; the files that code the same 4:2:0 q85 image differently
 * (Huffman, progressive, restart markers, arithmetic) decode alike. */
static void test_goldens(void)
{
    FILE *g = fopen(fixture(JDIR "goldens.txt"), "r");
    CHECK(g != NULL);
    if (!g)
        return;
    char line[512], name[128], want[80], src[32];
    int w, h, n = 0, n_indep = 0;
    char same420[65] = "";
    while (fgets(line, sizeof line, g)) {
        if (sscanf(line, "%127s %d %d %79s %31s", name, &w, &h, want, src) != 5)
            continue;
        char rel[200];
        snprintf(rel, sizeof rel, JDIR "%s", name);
        char path[4096];
        snprintf(path, sizeof path, "%s", fixture(rel));
        for (int via = 0; via < 2; via++) {
            uint8_t *rgb = NULL;
            int gw = 0, gh = 0;
            sld_error err = {0};
            sld_status st = via ? sld_image_read(path, &rgb, &gw, &gh, &err)
                                : sld_jpeg_read(path, &rgb, &gw, &gh, &err);
            CHECK_MSG(st == SLD_OK, "%s: %s", name, err.msg);
            if (st)
                continue;
            CHECK_MSG(gw == w && gh == h, "%s: %dx%d", name, gw, gh);
            char hex[65];
            sha_hex(rgb, (size_t)gw * gh * 3, hex);
            CHECK_MSG(!strcmp(hex, want), "%s: sha256 %s, golden %s", name, hex, want);
            if (!via && (!strcmp(name, "baseline420.jpg") || !strcmp(name, "progressive.jpg") ||
                         !strcmp(name, "restart.jpg") || !strcmp(name, "arith.jpg"))) {
                if (!same420[0])
                    memcpy(same420, hex, sizeof same420);
                CHECK_MSG(!strcmp(same420, hex), "%s decodes unlike the other 4:2:0 files",
                          name);
            }
            if (!via && !strcmp(name, "gray.jpg")) /* R = G = B */
                for (int i = 0; i < gw * gh; i++)
                    if (rgb[3 * i] != rgb[3 * i + 1] || rgb[3 * i] != rgb[3 * i + 2]) {
                        CHECK_MSG(0, "gray.jpg pixel %d is not gray", i);
                        break;
                    }
            sld_free(rgb);
        }
        n++;
        n_indep += !strcmp(src, "pil+djpeg");
    }
    fclose(g);
    CHECK(n == 10);     /* every mode listed in the header */
    CHECK(n_indep == 8); /* all but CMYK/YCCK also checked by djpeg */
}

/* sld_jpeg_decode from memory agrees with the file reader, and a lower
 * pixel limit is applied. */
static void test_decode_mem(void)
{
    size_t n;
    uint8_t *d = load(JDIR "q90_444.jpg", &n);
    CHECK(d != NULL);
    if (!d)
        return;
    uint8_t *a = NULL, *b = NULL;
    int w, h, w2, h2;
    sld_error err;
    CHECK(sld_jpeg_decode(d, n, "mem", 0, &a, &w, &h, &err) == SLD_OK);
    CHECK(sld_jpeg_read(fixture(JDIR "q90_444.jpg"), &b, &w2, &h2, &err) == SLD_OK);
    CHECK(a && b && w == w2 && h == h2 && !memcmp(a, b, (size_t)w * h * 3));
    sld_free(a);
    sld_free(b);
    CHECK(sld_jpeg_decode(d, n, "mem", 100, &a, &w, &h, &err) == SLD_ERR_FORMAT);
    CHECK(a == NULL && strstr(err.msg, "mem") && strstr(err.msg, "33x25"));
    sld_free(d);
}

/* The format is told by content: a JPEG named .png is read as JPEG and a
 * PNG named .jpg as PNG; PNGs read through sld_image_read are unchanged. */
static void test_sniff_by_content(void)
{
    size_t n;
    uint8_t *d = load(JDIR "baseline420.jpg", &n);
    CHECK(d && save(tpath("actually_jpeg.png"), d, n));
    uint8_t *a = NULL, *b = NULL;
    int w, h, w2, h2;
    sld_error err;
    CHECK(sld_image_read(tpath("actually_jpeg.png"), &a, &w, &h, &err) == SLD_OK);
    CHECK(sld_jpeg_read(fixture(JDIR "baseline420.jpg"), &b, &w2, &h2, &err) == SLD_OK);
    CHECK(a && b && w == w2 && h == h2 && !memcmp(a, b, (size_t)w * h * 3));
    sld_free(b);
    b = NULL;
    /* the decoded pixels as a PNG named .jpg */
    CHECK(a && sld_png_write(tpath("actually_png.jpg"), a, w, h, NULL, &err) == SLD_OK);
    CHECK(sld_image_read(tpath("actually_png.jpg"), &b, &w2, &h2, &err) == SLD_OK);
    CHECK(a && b && w == w2 && h == h2 && !memcmp(a, b, (size_t)w * h * 3));
    sld_free(a);
    sld_free(b);
    sld_free(d);
    CHECK(sld_image_name_ok("a.png") && sld_image_name_ok("b.JPG") &&
          sld_image_name_ok("c.JpEg") && sld_image_name_ok("d.jpeg"));
    CHECK(!sld_image_name_ok("e.gif") && !sld_image_name_ok(".jpg") &&
          !sld_image_name_ok("f.jpg.txt") && !sld_image_name_ok("jpg"));
}

/* Reads path expecting code; the message must name the file and contain
 * needle. */
static void expect_error(const char *path, sld_status code, const char *needle)
{
    uint8_t *rgb = (uint8_t *)1;
    int w = -1, h = -1;
    sld_error err = {0};
    sld_status st = sld_image_read(path, &rgb, &w, &h, &err);
    CHECK_MSG(st == code, "%s: status %d, want %d (%s)", path, st, code, err.msg);
    CHECK(rgb == NULL && w == 0 && h == 0);
    CHECK_MSG(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message lacks '%s': %s", needle, err.msg);
}

static void test_truncated(void)
{
    static const char *const files[] = {"baseline420.jpg", "progressive.jpg", "restart.jpg",
                                        "arith.jpg", "gray.jpg", "cmyk.jpg"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char rel[100];
        snprintf(rel, sizeof rel, JDIR "%s", files[k]);
        size_t n;
        uint8_t *d = load(rel, &n);
        CHECK(d != NULL);
        if (!d)
            continue;
        /* cut mid-scan (60%) and just before the end marker */
        const size_t cuts[2] = {n * 6 / 10, n - 2};
        for (int c = 0; c < 2; c++) {
            if (c == 1 && (d[n - 2] != 0xFF || d[n - 1] != 0xD9))
                CHECK_MSG(0, "%s does not end in EOI", files[k]);
            CHECK(save(tpath("cut.jpg"), d, cuts[c]));
            expect_error(tpath("cut.jpg"), SLD_ERR_FORMAT, "truncated");
        }
        /* header only, and the first 3 bytes */
        CHECK(save(tpath("cut.jpg"), d, 160));
        uint8_t *rgb;
        int w, h;
        sld_error err;
        CHECK(sld_image_read(tpath("cut.jpg"), &rgb, &w, &h, &err) == SLD_ERR_FORMAT);
        CHECK(save(tpath("cut.jpg"), d, 3));
        CHECK(sld_image_read(tpath("cut.jpg"), &rgb, &w, &h, &err) == SLD_ERR_FORMAT);
        sld_free(d);
    }
}

static void test_garbage_and_other_formats(void)
{
    /* a JPEG signature followed by noise */
    uint8_t g[600];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof g; i++) {
        s = s * 1664525u + 1013904223u;
        g[i] = (uint8_t)(s >> 24);
    }
    g[0] = 0xFF, g[1] = 0xD8, g[2] = 0xFF, g[3] = 0xE0;
    CHECK(save(tpath("noise.jpg"), g, sizeof g));
    expect_error(tpath("noise.jpg"), SLD_ERR_FORMAT, "corrupt JPEG");
    /* what other files look like */
    static const struct {
        const char *name, *bytes;
        size_t n;
        const char *what;
    } other[] = {
        {"a.gif", "GIF89a\x01\x00\x01\x00", 10, "a GIF image"},
        {"b.jpg", "RIFF\x10\x00\x00\x00WEBPVP8 ", 16, "a WebP image"},
        {"c.jpg", "<!DOCTYPE html><html>", 21, "HTML"},
        {"d.png", "", 0, "an empty file"},
        {"e.jpg", "BM\x36\x00\x00\x00", 6, "a BMP image"},
        {"f.jpg", "II*\x00\x08\x00\x00\x00", 8, "a TIFF image"},
        {"g.jpg", "\xff\xd8\x00\x00", 4, "damaged JPEG"},
        {"h.png", "\x89PNG\r\n\x00\n", 8, "damaged PNG"},
        {"i.jpg", "\x00\x00\x00\x1c" "ftypavif", 12, "an AVIF image"},
    };
    for (size_t k = 0; k < sizeof other / sizeof *other; k++) {
        CHECK(save(tpath(other[k].name), other[k].bytes, other[k].n));
        expect_error(tpath(other[k].name), SLD_ERR_FORMAT, other[k].what);
    }
    expect_error(tpath("missing.jpg"), SLD_ERR_IO, "missing.jpg");
    /* a folder is not an image */
    expect_error(tmpdir, SLD_ERR_IO, tmpdir);
}

static char last_warning[600];
static void capture_log(sld_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level == SLD_LOG_WARN)
        snprintf(last_warning, sizeof last_warning, "%s", msg);
}

/* Corrupt entropy data (a flipped byte, a stray restart marker): libjpeg
 * warns and goes on; the pixels are Pillow's (golden from Pillow 9.4 on the
 * same libjpeg-turbo 2.1.5) and one warning names the file. */
static void test_damaged_decodable(void)
{
    size_t n;
    uint8_t *d = load(JDIR "baseline420.jpg", &n);
    CHECK(d && n == 1113);
    if (!d || n != 1113) {
        sld_free(d);
        return;
    }
    size_t sos = 0;
    for (size_t i = 2; i + 1 < n; i++)
        if (d[i] == 0xFF && d[i + 1] == 0xDA)
            sos = i;
    CHECK(sos == 609);
    d[sos + 40] ^= 0x55;
    d[sos + 200] = 0xFF, d[sos + 201] = 0xD3;
    CHECK(save(tpath("damaged.jpg"), d, n));
    uint8_t *rgb = NULL;
    int w, h;
    sld_error err;
    last_warning[0] = 0;
    sld_log_set(capture_log, NULL);
    sld_status st = sld_image_read(tpath("damaged.jpg"), &rgb, &w, &h, &err);
    sld_log_set(NULL, NULL);
    CHECK_MSG(st == SLD_OK, "%s", err.msg);
    char hex[65] = "";
    if (rgb)
        sha_hex(rgb, (size_t)w * h * 3, hex);
    CHECK_MSG(!strcmp(hex, "9532c800ef6b864371fb70841f6fdb60b4d40244152a1e299cf985c427dc9562"),
              "%s", hex);
    CHECK_MSG(strstr(last_warning, "damaged.jpg") && strstr(last_warning, "warning"), "%s",
              last_warning);
    sld_free(rgb);
    sld_free(d);
}

/* A header claiming absurd dimensions is refused before pixels are taken. */
static void test_huge_dimensions(void)
{
    size_t n;
    uint8_t *d = load(JDIR "baseline420.jpg", &n);
    CHECK(d != NULL);
    if (!d)
        return;
    size_t sof = 0;
    for (size_t i = 2; i + 9 < n; i++)
        if (d[i] == 0xFF && d[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    CHECK(sof > 0);
    static const struct {
        unsigned w, h;
        const char *why; /* libjpeg refuses above 65500 itself */
    } dims[] = {{60000, 60000, "larger than allowed"},
                {65535, 1, "65500"},
                {16384, 8193, "larger than allowed"},
                {16385, 16, "larger than allowed"}};
    for (size_t k = 0; k < sizeof dims / sizeof *dims && sof; k++) {
        d[sof + 5] = (uint8_t)(dims[k].h >> 8), d[sof + 6] = (uint8_t)dims[k].h;
        d[sof + 7] = (uint8_t)(dims[k].w >> 8), d[sof + 8] = (uint8_t)dims[k].w;
        CHECK(save(tpath("huge.jpg"), d, n));
        clock_t t0 = clock();
        expect_error(tpath("huge.jpg"), SLD_ERR_FORMAT, dims[k].why);
        CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 0.5); /* refused, not decoded */
    }
    sld_free(d);
}

/* A progressive file with its last scan repeated hundreds of times (each
 * repeat costs a full pass over the image) is refused at the scan limit. */
static void test_scan_limit(void)
{
    size_t n;
    uint8_t *d = load(JDIR "progressive.jpg", &n);
    CHECK(d != NULL);
    if (!d)
        return;
    size_t last = 0;
    for (size_t i = 2; i + 1 < n; i++)
        if (d[i] == 0xFF && d[i + 1] == 0xDA)
            last = i;
    CHECK(last > 0 && d[n - 2] == 0xFF && d[n - 1] == 0xD9);
    const size_t scan = n - 2 - last, reps = SLD_JPEG_MAX_SCANS + 10;
    uint8_t *evil = sld_malloc(n + reps * scan);
    CHECK(evil != NULL);
    if (evil && last) {
        memcpy(evil, d, n - 2);
        size_t o = n - 2;
        for (size_t r = 0; r < reps; r++, o += scan)
            memcpy(evil + o, d + last, scan);
        evil[o++] = 0xFF;
        evil[o++] = 0xD9;
        CHECK(save(tpath("scans.jpg"), evil, o));
        expect_error(tpath("scans.jpg"), SLD_ERR_FORMAT, "scans");
        /* a few repeats are only a warning (bogus progression): decoded as
         * Pillow decodes them, with a logged warning naming the file */
        o = n - 2;
        for (size_t r = 0; r < 3; r++, o += scan)
            memcpy(evil + o, d + last, scan);
        evil[o++] = 0xFF;
        evil[o++] = 0xD9;
        uint8_t *rgb = NULL;
        int w, h;
        sld_error err;
        last_warning[0] = 0;
        sld_log_set(capture_log, NULL);
        sld_status st = sld_jpeg_decode(evil, o, "few.jpg", 0, &rgb, &w, &h, &err);
        sld_log_set(NULL, NULL);
        CHECK_MSG(st == SLD_OK, "%s", err.msg);
        CHECK_MSG(strstr(last_warning, "few.jpg") && strstr(last_warning, "damaged"), "%s",
                  last_warning);
        /* Pillow 9.4 on the same libjpeg: sha256 of convert("RGB") of this file */
        char hex[65] = "";
        if (rgb)
            sha_hex(rgb, (size_t)w * h * 3, hex);
        CHECK_MSG(!strcmp(hex, "0d375ce602fe6c4bb68c576379346b92efb653266ba607507941013f03730ef8"),
                  "%s", hex);
        sld_free(rgb);
    }
    sld_free(evil);
    sld_free(d);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sld_test_jpeg_%ld", (long)getpid());
    mkdir(tmpdir, 0755);
    RUN(test_goldens);
    RUN(test_decode_mem);
    RUN(test_sniff_by_content);
    RUN(test_truncated);
    RUN(test_garbage_and_other_formats);
    RUN(test_damaged_decodable);
    RUN(test_huge_dimensions);
    RUN(test_scan_limit);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", tmpdir);
    TEST_END();
}
