/* test_png.c — PNG write/read round trips, text chunks, other PNG layouts
 * (palette, gray, 16-bit, alpha, interlaced), corrupt files and a full disk. */
#include "io/png.h"
#include "test.h"

#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void fill(uint8_t *rgb, int w, int h)
{
    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = (uint8_t)(i * 37 + (i / 7) * 11);
}

static void test_roundtrip_with_text(void)
{
    int w = 13, h = 7;
    uint8_t rgb[13 * 7 * 3];
    fill(rgb, w, h);
    sld_error err;
    const char *p = tpath("a.png");
    const char *params = "a knight\nSteps: 2, Sampler: pndm, Seed: 42, émoji ✓";
    CHECK(sld_png_write(p, rgb, w, h, params, &err) == SLD_OK);
    uint8_t *got;
    int gw, gh;
    CHECK(sld_png_read(p, &got, &gw, &gh, &err) == SLD_OK);
    CHECK(gw == w && gh == h);
    CHECK(memcmp(got, rgb, sizeof rgb) == 0);
    sld_free(got);
    char *t;
    CHECK(sld_png_read_text(p, "parameters", &t, &err) == SLD_OK);
    CHECK(t && strcmp(t, params) == 0);
    sld_free(t);
    CHECK(sld_png_read_text(p, "missing", &t, &err) == SLD_OK && t == NULL);
    /* No temporary file is left behind. */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    /* Several chunks through the internal form. */
    sld_png_text tx[2] = {{"parameters", "x"}, {"i2p", "{\"row\":1}"}};
    CHECK(sld_png_write_text(p, rgb, w, h, tx, 2, &err) == SLD_OK);
    CHECK(sld_png_read_text(p, "i2p", &t, &err) == SLD_OK && t && !strcmp(t, "{\"row\":1}"));
    sld_free(t);
}

/* Writes a PNG of any layout with the low-level libpng API. */
static void write_raw(const char *path, int w, int h, int color_type, int depth,
                      const uint8_t *data, size_t rowbytes, int interlace, const png_color *pal,
                      int n_pal, const char *text_after)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, 0, 0);
    if (pal)
        png_set_PLTE(png, info, pal, n_pal);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++)
            png_write_row(png, data + (size_t)y * rowbytes);
    if (text_after) {
        png_text t = {.compression = PNG_TEXT_COMPRESSION_zTXt, .key = "parameters",
                      .text = (char *)text_after, .text_length = strlen(text_after)};
        png_set_text(png, info, &t, 1);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void test_other_layouts(void)
{
    sld_error err;
    uint8_t *got;
    int gw, gh;
    /* 16-bit RGB: high bytes survive. */
    uint8_t d16[2 * 2 * 6];
    for (int i = 0; i < 24; i++)
        d16[i] = (uint8_t)(i * 10 + 1);
    write_raw(tpath("r16.png"), 2, 2, PNG_COLOR_TYPE_RGB, 16, d16, 12, 0, NULL, 0, NULL);
    CHECK(sld_png_read(tpath("r16.png"), &got, &gw, &gh, &err) == SLD_OK);
    if (got) {
        for (int i = 0; i < 12; i++)
            CHECK(got[i] == d16[2 * i]);
        sld_free(got);
    }
    /* Gray + alpha, 8-bit: gray replicated, alpha dropped. */
    uint8_t ga[3 * 2 * 2] = {10, 255, 20, 0, 30, 128, 40, 1, 50, 2, 60, 3};
    write_raw(tpath("ga.png"), 3, 2, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, 6, 1, NULL, 0, NULL);
    CHECK(sld_png_read(tpath("ga.png"), &got, &gw, &gh, &err) == SLD_OK);
    CHECK(gw == 3 && gh == 2);
    if (got) {
        for (int i = 0; i < 6; i++)
            CHECK(got[3 * i] == ga[2 * i] && got[3 * i + 1] == ga[2 * i] &&
                  got[3 * i + 2] == ga[2 * i]);
        sld_free(got);
    }
    /* Palette, 4-bit, interlaced, text after the image data. */
    png_color pal[3] = {{255, 0, 0}, {0, 255, 0}, {1, 2, 3}};
    /* 5 px of 4 bits per row = 3 bytes: indices 0,1,2,0,1 and 2,1,0,2,0. */
    uint8_t pdata[2 * 3] = {0x01, 0x20, 0x10, 0x21, 0x02, 0x00};
    write_raw(tpath("pal.png"), 5, 2, PNG_COLOR_TYPE_PALETTE, 4, pdata, 3, 1, pal, 3,
              "late text");
    CHECK(sld_png_read(tpath("pal.png"), &got, &gw, &gh, &err) == SLD_OK);
    if (got) {
        int want[10] = {0, 1, 2, 0, 1, 2, 1, 0, 2, 0};
        for (int i = 0; i < 10; i++)
            CHECK_MSG(got[3 * i] == pal[want[i]].red && got[3 * i + 1] == pal[want[i]].green &&
                          got[3 * i + 2] == pal[want[i]].blue,
                      "pixel %d", i);
        sld_free(got);
    }
    char *t;
    CHECK(sld_png_read_text(tpath("pal.png"), "parameters", &t, &err) == SLD_OK);
    CHECK(t && !strcmp(t, "late text"));
    sld_free(t);
}

static void test_bad_files(void)
{
    sld_error err;
    uint8_t *got;
    int gw, gh;
    FILE *f = fopen(tpath("bad.png"), "wb");
    fputs("not a png at all", f);
    fclose(f);
    CHECK(sld_png_read(tpath("bad.png"), &got, &gw, &gh, &err) == SLD_ERR_FORMAT);
    CHECK(strstr(err.msg, "bad.png") && strstr(err.msg, "signature"));
    CHECK(sld_png_read(tpath("none.png"), &got, &gw, &gh, &err) == SLD_ERR_IO);
    /* Truncation at many offsets: always an error, never a crash. */
    uint8_t rgb[16 * 16 * 3];
    fill(rgb, 16, 16);
    CHECK(sld_png_write(tpath("full.png"), rgb, 16, 16, "p", &err) == SLD_OK);
    char *buf;
    size_t len;
    CHECK(sld_file_read(tpath("full.png"), 1 << 20, &buf, &len, &err) == SLD_OK);
    for (size_t cut = 8; cut < len; cut += 17) {
        f = fopen(tpath("cut.png"), "wb");
        fwrite(buf, 1, cut, f);
        fclose(f);
        sld_status st = sld_png_read(tpath("cut.png"), &got, &gw, &gh, &err);
        CHECK_MSG(st == SLD_ERR_FORMAT, "cut at %zu: %d", cut, st);
        if (st == SLD_OK)
            sld_free(got);
    }
    /* An absurd size in the header is refused before allocating. */
    buf[16] = 0x7f; /* width high byte: about 2^30 */
    f = fopen(tpath("huge.png"), "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
    CHECK(sld_png_read(tpath("huge.png"), &got, &gw, &gh, &err) == SLD_ERR_FORMAT);
    sld_free(buf);
    /* Bad arguments. */
    CHECK(sld_png_write(tpath("x.png"), rgb, 0, 4, NULL, &err) == SLD_ERR_INVALID_ARG);
    CHECK(access(tpath("x.png"), F_OK) != 0);
}

static void test_disk_full(void)
{
    /* /dev/full fails every write with ENOSPC: the error says so. (The
     * stream form is used: the atomic form would create files in /dev.) */
    FILE *f = fopen("/dev/full", "wb");
    if (!f) {
        printf("  (no /dev/full here: skipped)\n");
        return;
    }
    uint8_t rgb[64 * 64 * 3];
    fill(rgb, 64, 64);
    sld_error err;
    sld_status st = sld_png_write_stream(f, "/dev/full", rgb, 64, 64, NULL, 0, &err);
    fclose(f);
    CHECK(st == SLD_ERR_IO);
    CHECK_MSG(strstr(err.msg, "No space left on device") != NULL, "%s", err.msg);
    /* A folder that does not exist: clear error, nothing created. */
    st = sld_png_write(tpath("no/such/dir/a.png"), rgb, 64, 64, NULL, &err);
    CHECK(st == SLD_ERR_IO && strstr(err.msg, "cannot create"));
}

static void test_oom(void)
{
    uint8_t rgb[8 * 8 * 3];
    fill(rgb, 8, 8);
    sld_error err;
    CHECK(sld_png_write(tpath("o.png"), rgb, 8, 8, "x", &err) == SLD_OK);
    for (long k = 1; k < 6; k++) {
        uint8_t *got = NULL;
        int w, h;
        sld_alloc_fail_at(k);
        sld_status st = sld_png_read(tpath("o.png"), &got, &w, &h, &err);
        sld_alloc_fail_at(0);
        CHECK(st == SLD_OK || st == SLD_ERR_NOMEM);
        sld_free(got);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sld_test_png_%ld", (long)getpid());
    mkdir(tmpdir, 0755);
    RUN(test_roundtrip_with_text);
    RUN(test_other_layouts);
    RUN(test_bad_files);
    RUN(test_disk_full);
    RUN(test_oom);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", tmpdir);
    TEST_END();
}
