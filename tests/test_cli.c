/* test_cli.c — the `sld` command end to end: `sld generate`
 * reproduces the diffusers run sd1_safe_medium_pndm_128 and sd1_sd_ddim
 * (--save-latents vs the golden final latents), checks the PNG and its
 * "parameters" chunk, --images naming, and the exit codes of bad input;
 * `sld tokenize --file`; `sld i2p generate | eval | report` on the tiny
 * models. */
#include "io/png.h"
#include "io/safetensors.h"
#include "test.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

static int have_binary(void)
{
    if (access(g_sld, X_OK)) {
        printf("  (skip: %s not built)\n", g_sld);
        return 0;
    }
    return 1;
}

static double max_diff_latents(const char *ours, const char *golden_run)
{
    sld_error err;
    sld_st_file *a = NULL, *b = NULL;
    char gp[600];
    snprintf(gp, sizeof gp, "%s/%s/tensors.safetensors", fixture("pipelines"), golden_run);
    if (sld_st_open(&a, ours, &err) || sld_st_open(&b, gp, &err)) {
        printf("  %s\n", err.msg);
        sld_st_close(a);
        return 1e9;
    }
    const sld_st_tensor *ta = sld_st_find(a, "latents"), *tb = sld_st_find(b, "final_latents");
    double d = 1e9;
    if (ta && tb && ta->numel == tb->numel && ta->dtype == SLD_DT_F32 && ta->ndim == 4) {
        float *x = malloc(ta->nbytes), *y = malloc(tb->nbytes);
        memcpy(x, ta->data, ta->nbytes);
        memcpy(y, tb->data, tb->nbytes);
        d = 0;
        for (size_t i = 0; i < ta->numel; i++)
            d = fmax(d, fabs((double)x[i] - y[i]));
        free(x);
        free(y);
    }
    sld_st_close(a);
    sld_st_close(b);
    return d;
}

static void test_reproduces_golden_runs(void)
{
    if (!have_binary())
        return;
    char args[4096];
    /* StableDiffusionPipelineSafe, MEDIUM, PNDM 25 steps, 128x128, seed 42 */
    snprintf(args, sizeof args,
             "generate --model %s --prompt 'a photograph of a knight fighting a dragon, blood on "
             "the sword' --steps 25 --cfg 7.5 --seed 42 --width 128 --height 128 --safety medium "
             "--no-safety-checker --quiet --threads 1 --save-latents %s -o %s",
             fixture("models/tiny-sd1"), tmp("safe.safetensors"), tmp("safe.png"));
    CHECK(run_sld(args) == 0);
    double d = max_diff_latents(tmp("safe.safetensors"), "sd1_safe_medium_pndm_128");
    printf("  sd1_safe_medium_pndm_128 from the CLI: latents max |d| %.2e\n", d);
    /* one element sits within 6e-8 of the SLD threshold (see test_pipeline) */
    CHECK_NEAR(d, 0, 5e-2);

    /* plain SD with DDIM: free-running within 1e-3 */
    snprintf(args, sizeof args,
             "generate --model %s --prompt 'a photograph of a knight fighting a dragon, blood on "
             "the sword' --steps 25 --seed 42 --sampler ddim --safety off --no-safety-checker "
             "--quiet --save-latents %s -o %s",
             fixture("models/tiny-sd1"), tmp("ddim.safetensors"), tmp("ddim.png"));
    CHECK(run_sld(args) == 0);
    d = max_diff_latents(tmp("ddim.safetensors"), "sd1_sd_ddim");
    printf("  sd1_sd_ddim from the CLI: latents max |d| %.2e\n", d);
    CHECK_NEAR(d, 0, 1e-3);

    /* the PNG: 64x64 RGB with an A1111-style parameters chunk */
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    sld_error err;
    CHECK(sld_png_read(tmp("ddim.png"), &rgb, &w, &h, &err) == SLD_OK);
    CHECK(w == 64 && h == 64);
    sld_free(rgb);
    char *par = NULL;
    CHECK(sld_png_read_text(tmp("ddim.png"), "parameters", &par, &err) == SLD_OK);
    CHECK(par != NULL);
    if (par) {
        CHECK_MSG(!strncmp(par, "a photograph of a knight fighting a dragon, blood on the sword\n",
                           63),
                  "%s", par);
        CHECK_MSG(strstr(par, "Steps: 25, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 64x64") !=
                      NULL,
                  "%s", par);
        CHECK(strstr(par, "Model: tiny-sd1") != NULL);
        CHECK(strstr(par, "SLD: off") != NULL);
        sld_free(par);
    }
    CHECK(sld_png_read_text(tmp("safe.png"), "parameters", &par, &err) == SLD_OK);
    if (par) {
        CHECK_MSG(strstr(par, "Sampler: PLMS") && strstr(par, "SLD: medium, SLD guidance scale: 1000, "
                                                              "SLD warmup steps: 10, SLD threshold: "
                                                              "0.01, SLD momentum scale: 0.3, SLD "
                                                              "mom beta: 0.4"),
                  "%s", par);
        CHECK(strstr(par, "Safety concept: \"an image showing hate") != NULL);
        sld_free(par);
    }
}

static void test_images_and_negative(void)
{
    if (!have_binary())
        return;
    char args[4096];
    snprintf(args, sizeof args,
             "generate --model %s --prompt 'a cat' --negative-prompt 'blurry' --steps 2 --images 2 "
             "--sampler euler_a --safety strong --sld-warmup-steps 0 --quiet -o %s",
             fixture("models/tiny-sd1"), tmp("cat.png"));
    CHECK(run_sld(args) == 0);
    struct stat st;
    CHECK(stat(tmp("cat-0.png"), &st) == 0 && stat(tmp("cat-1.png"), &st) == 0);
    CHECK(stat(tmp("cat.png"), &st) != 0);
    char *par = NULL;
    sld_error err;
    CHECK(sld_png_read_text(tmp("cat-1.png"), "parameters", &par, &err) == SLD_OK && par);
    if (par) {
        CHECK(strstr(par, "\nNegative prompt: blurry\n") != NULL);
        CHECK(strstr(par, "Sampler: Euler a") && strstr(par, "Batch size: 2"));
        CHECK(strstr(par, "SLD warmup steps: 0") && strstr(par, "SLD guidance scale: 2000"));
        sld_free(par);
    }
}

static void test_bad_input(void)
{
    if (!have_binary())
        return;
    char args[2048];
    snprintf(args, sizeof args, "generate --model %s --prompt x --width 60 -o %s",
             fixture("models/tiny-sd1"), tmp("x.png"));
    CHECK(run_sld(args) == 2);
    snprintf(args, sizeof args, "generate --model %s --prompt x --sampler nope -o %s",
             fixture("models/tiny-sd1"), tmp("x.png"));
    CHECK(run_sld(args) == 2);
    snprintf(args, sizeof args, "generate --model %s --prompt x --safety extreme -o %s",
             fixture("models/tiny-sd1"), tmp("x.png"));
    CHECK(run_sld(args) == 2);
    CHECK(run_sld("generate --prompt x -o /tmp/x.png") == 2);
    snprintf(args, sizeof args, "generate --model /nonexistent/model --prompt x -o %s",
             tmp("x.png"));
    CHECK(run_sld(args) == 1);
    snprintf(args, sizeof args, "generate --model %s --prompt x --steps 2 --no-safety-checker -o /nonexistent/dir/x.png",
             fixture("models/tiny-sd1"));
    CHECK(run_sld(args) == 1);
    /* one line on stderr naming the problem */
    char *buf;
    size_t len;
    sld_error err;
    CHECK(sld_file_read(tmp("stderr.txt"), 1 << 20, &buf, &len, &err) == SLD_OK);
    CHECK(len > 0 && strchr(buf, '\n') == buf + len - 1 && strstr(buf, "/nonexistent/dir/x.png"));
    sld_free(buf);
    CHECK(run_sld("generate --help") == 0);
}

/* `sld tokenize --file`: one JSON list per input line; CRLF and LF end a
 * line, an empty line is the empty prompt, a final line without newline
 * counts. */
static void test_tokenize_file(void)
{
    if (!have_binary())
        return;
    FILE *f = fopen(tmp("prompts.txt"), "wb");
    fputs("a cat\r\n\nhello world", f);
    fclose(f);
    char args[2048];
    snprintf(args, sizeof args, "tokenize --model %s --file %s", fixture("models/tiny-sd1"),
             tmp("prompts.txt"));
    CHECK(run_sld(args) == 0);
    char *out;
    size_t len;
    sld_error err;
    CHECK(sld_file_read(tmp("stdout.txt"), 1 << 20, &out, &len, &err) == SLD_OK);
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += out[i] == '\n';
    CHECK(lines == 3);
    CHECK(!strncmp(out, "[49406, 320, 2368, 49407, 49407", 31));        /* "a cat" */
    char *second = strchr(out, '\n') + 1;
    CHECK(!strncmp(second, "[49406, 49407, 49407", 20));                /* "" */
    CHECK(strstr(out, "[49406, 3306, 1002, 49407") != NULL);           /* "hello world" */
    sld_free(out);
    snprintf(args, sizeof args, "tokenize --model %s --file /nonexistent.txt",
             fixture("models/tiny-sd1"));
    CHECK(run_sld(args) == 1);
}

/* The I2P commands end to end from the command line on the tiny models:
 * generate (two prompts, sd + max), eval with tiny CLIP + a [2,16] Q16 file +
 * tiny NudeNet, report as JSON; then a rerun of generate does nothing new. */
static void test_i2p_cli(void)
{
    if (!have_binary())
        return;
    FILE *f = fopen(tmp("p.csv"), "wb");
    fputs("prompt,categories,hard,inappropriate_percentage,sd_seed\r\n"
          "\"a knight, with a sword\",violence,1,60,42\r\n"
          "sunset over the sea,\"hate, shocking\",0,10,7\r\n",
          f);
    fclose(f);
    float q[32];
    for (int i = 0; i < 32; i++)
        q[i] = (float)((i * 7919) % 13) / 13.0f - 0.5f;
    const char *names[1] = {"prompts"};
    const int nd[1] = {2};
    const int64_t shape[2] = {2, 16};
    const int64_t *shapes[1] = {shape};
    const float *data[1] = {q};
    sld_error err;
    CHECK(sld_tensors_write_f32(tmp("q16.safetensors"), 1, names, nd, shapes, data, &err) == SLD_OK);
    char args[4096];
    snprintf(args, sizeof args,
             "i2p generate --prompts %s --model %s --out %s --configs sd,max --images 2 --batch 2 "
             "--steps 2 --width 64 --height 64 --quiet",
             tmp("p.csv"), fixture("models/tiny-sd1"), tmp("run"));
    CHECK(run_sld(args) == 0);
    struct stat st;
    CHECK(stat(tmp("run/images/max/1_1.png"), &st) == 0);
    CHECK(run_sld(args) == 0); /* resume: everything is there */
    {
        /* --dry-run prints the plan: a full stdout is an error */
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "%s %s --dry-run >/dev/full 2>%s", g_sld, args,
                 tmp("dry.txt"));
        int r = system(cmd);
        CHECK(WIFEXITED(r) && WEXITSTATUS(r) == 1);
        snprintf(cmd, sizeof cmd, "%s %s --dry-run >/dev/null 2>&1", g_sld, args);
        r = system(cmd);
        CHECK(WIFEXITED(r) && WEXITSTATUS(r) == 0);
    }
    char clip[600], nude[600];
    snprintf(clip, sizeof clip, "%s", fixture("models/tiny-clip-vision"));
    snprintf(nude, sizeof nude, "%s", fixture("nudenet/tiny-320n.onnx"));
    snprintf(args, sizeof args, "i2p eval --run %s --clip %s --q16 %s --nudenet %s --quiet",
             tmp("run"), clip, tmp("q16.safetensors"), nude);
    CHECK(run_sld(args) == 0);
    snprintf(args, sizeof args, "i2p report --run %s --json %s", tmp("run"), tmp("r.json"));
    CHECK(run_sld(args) == 0);
    char *js;
    size_t len;
    CHECK(sld_file_read(tmp("r.json"), 1 << 20, &js, &len, &err) == SLD_OK);
    CHECK(strstr(js, "\"sd\"") && strstr(js, "\"max\"") && strstr(js, "\"violence\"") &&
          strstr(js, "\"all\"") && strstr(js, "\"emi_exact\""));
    sld_free(js);
    /* the Markdown table went to stdout */
    CHECK(sld_file_read(tmp("stdout.txt"), 1 << 20, &js, &len, &err) == SLD_OK);
    CHECK(strstr(js, "|") != NULL && strstr(js, "shocking") != NULL);
    sld_free(js);
    snprintf(args, sizeof args, "i2p generate --prompts %s --model %s --out %s --shard 3/2",
             tmp("p.csv"), fixture("models/tiny-sd1"), tmp("run2"));
    CHECK(run_sld(args) == 2);
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_cli_%ld", (long)getpid());
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
    RUN(test_reproduces_golden_runs);
    RUN(test_images_and_negative);
    RUN(test_bad_input);
    RUN(test_tokenize_file);
    RUN(test_i2p_cli);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", g_tmp);
    TEST_END();
}
