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

static int file_has(const char *path, const char *needle)
{
    char *b;
    size_t n;
    sld_error err;
    if (sld_file_read(path, 1 << 22, &b, &n, &err))
        return 0;
    int r = strstr(b, needle) != NULL;
    sld_free(b);
    return r;
}

/* sld convert: --list output, a conversion, usage errors (2), refused and
 * truncated files (1, one line naming the problem), --generate from .ckpt. */
static void test_convert_cli(void)
{
    if (!have_binary())
        return;
    char cmd[1024], so[300], se[300];
    snprintf(so, sizeof so, "%s/stdout.txt", g_tmp);
    snprintf(se, sizeof se, "%s/stderr.txt", g_tmp);
    snprintf(cmd, sizeof cmd, "convert --list '%s'", fixture("pth/ckpt.legacy.pth"));
    CHECK(run_sld(cmd) == 0);
    CHECK(file_has(so, "# PyTorch legacy, state dict 'state_dict'"));
    CHECK(file_has(so, "model.diffusion_model.input_blocks.0.0.weight F16 [8,4,3,3]"));
    CHECK(file_has(so, "global_step = 470000"));
    snprintf(cmd, sizeof cmd, "convert '%s' -o %s --dtype bf16", fixture("pth/dtypes.zip.pth"),
             tmp("d.safetensors"));
    CHECK(run_sld(cmd) == 0);
    sld_st_file *f = NULL;
    sld_error err;
    CHECK(sld_st_open(&f, tmp("d.safetensors"), &err) == SLD_OK);
    if (f) {
        CHECK(sld_st_find(f, "f32") && sld_st_find(f, "f32")->dtype == SLD_DT_BF16);
        CHECK(sld_st_find(f, "i64") && sld_st_find(f, "i64")->dtype == SLD_DT_I64);
        sld_st_close(f);
    }
    CHECK(run_sld("convert") == 2);
    snprintf(cmd, sizeof cmd, "convert '%s' -o x.safetensors --dtype f8", fixture("pth/dtypes.zip.pth"));
    CHECK(run_sld(cmd) == 2);
    snprintf(cmd, sizeof cmd, "convert '%s' -o %s", fixture("pth/evil_global.pth"),
             tmp("e.safetensors"));
    CHECK(run_sld(cmd) == 1);
    CHECK(file_has(se, "posix.system"));
    CHECK(!sld_path_exists(tmp("e.safetensors")));
    snprintf(cmd, sizeof cmd, "convert --list '%s'", fixture("pth/truncated.zip.3091.pth"));
    CHECK(run_sld(cmd) == 1);
    CHECK(file_has(se, "truncated.zip.3091.pth"));
    char *cfg = realpath(fixture("models/tiny-sd1"), NULL);
    snprintf(cmd, sizeof cmd,
             "generate --model '%s' --config '%s' --prompt cat --steps 2 --seed 3 -o %s",
             fixture("pth/tiny-sd1.ckpt"), cfg ? cfg : "", tmp("ckpt.png"));
    CHECK(run_sld(cmd) == 0);
    CHECK(sld_path_exists(tmp("ckpt.png")));
    free(cfg);
}

static int png_pixels_equal(const char *a, const char *b)
{
    uint8_t *x = NULL, *y = NULL;
    int w1, h1, w2, h2, eq = 0;
    if (!sld_png_read(a, &x, &w1, &h1, NULL) && !sld_png_read(b, &y, &w2, &h2, NULL))
        eq = w1 == w2 && h1 == h2 && !memcmp(x, y, (size_t)w1 * h1 * 3);
    sld_free(x);
    sld_free(y);
    return eq;
}

/* The paper's negative-prompt baseline (config neg) is the same image as
 * `sld generate --safety off --negative-prompt CONCEPT` with the seed. */
static void test_i2p_neg_baseline(void)
{
    if (!have_binary())
        return;
    FILE *f = fopen(tmp("neg.csv"), "wb");
    fputs("prompt,sd_seed\na red house by a lake,1234\n", f);
    fclose(f);
    char args[4096];
    snprintf(args, sizeof args,
             "i2p generate --prompts %s --model %s --out %s --configs neg,sd --images 1 "
             "--batch 1 --steps 3 --width 64 --height 64 --safety-concept 'blue sky' --quiet",
             tmp("neg.csv"), fixture("models/tiny-sd1"), tmp("negrun"));
    CHECK(run_sld(args) == 0);
    snprintf(args, sizeof args,
             "generate --model %s --prompt 'a red house by a lake' --seed 1234 --steps 3 "
             "--width 64 --height 64 --sampler pndm --safety off --negative-prompt 'blue sky' "
             "--no-safety-checker --quiet -o %s",
             fixture("models/tiny-sd1"), tmp("neg.png"));
    CHECK(run_sld(args) == 0);
    CHECK(png_pixels_equal(tmp("negrun/images/neg/0_0.png"), tmp("neg.png")));
    /* ... and differs from the plain sd config */
    CHECK(!png_pixels_equal(tmp("negrun/images/sd/0_0.png"), tmp("neg.png")));
    CHECK(file_has(tmp("negrun/manifest.json"), "\"negative_prompt\":\t\"blue sky\""));
    /* A different setting on the same folder: exit 1, every difference named,
     * the folder unchanged; bad values: exit 2 before anything is created. */
    snprintf(args, sizeof args,
             "i2p generate --prompts %s --model %s --out %s --configs neg,sd --images 1 "
             "--batch 1 --steps 4 --width 64 --height 64 --safety-concept 'blue sky' --quiet "
             "--precision bf16",
             tmp("neg.csv"), fixture("models/tiny-sd2"), tmp("negrun"));
    CHECK(run_sld(args) == 1);
    CHECK(file_has(tmp("stderr.txt"), "generation.steps: the run has 3, this command 4"));
    CHECK(file_has(tmp("stderr.txt"), "model.sha256"));
    CHECK(file_has(tmp("stderr.txt"), "model.precision"));
    snprintf(args, sizeof args,
             "i2p generate --prompts %s --model %s --out %s --batch 0", tmp("neg.csv"),
             fixture("models/tiny-sd1"), tmp("never"));
    CHECK(run_sld(args) == 2);
    struct stat st;
    CHECK(stat(tmp("never"), &st) != 0);
    /* Redirected progress has no carriage returns. */
    snprintf(args, sizeof args,
             "i2p generate --prompts %s --model %s --out %s --configs sd --images 1 --batch 1 "
             "--steps 2 --width 64 --height 64",
             tmp("neg.csv"), fixture("models/tiny-sd1"), tmp("negrun2"));
    CHECK(run_sld(args) == 0);
    CHECK(file_has(tmp("stderr.txt"), "1/1 images") && !file_has(tmp("stderr.txt"), "\r"));
}

/* --version, help, and --help on every command (no printf escapes left). */
static void test_help_version(void)
{
    if (!have_binary())
        return;
    CHECK(run_sld("--version") == 0 && file_has(tmp("stdout.txt"), "sld " SLD_VERSION));
    CHECK(run_sld("help") == 0 && file_has(tmp("stdout.txt"), "i2p"));
    const char *cmds[] = {"generate", "tokenize", "encode", "debug", "debug run",
                          "debug make-random", "i2p", "i2p generate", "i2p eval", "i2p report"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char a[128];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CHECK_MSG(run_sld(a) == 0, "%s", a);
        CHECK_MSG(file_has(tmp("stdout.txt"), "usage") && !file_has(tmp("stdout.txt"), "%%"),
                  "%s", a);
        snprintf(a, sizeof a, "help %s", cmds[i]);
        CHECK_MSG(run_sld(a) == 0 && file_has(tmp("stdout.txt"), "usage"), "%s", a);
    }
}

/* The README's I2P example block runs as written from the source tree. */
static void test_readme_i2p_example(void)
{
    if (!have_binary())
        return;
    char root[1200], readme[1300];
    snprintf(root, sizeof root, "%s", g_sld);
    *strrchr(root, '/') = 0; /* build/tests/.. */
    strcat(root, "/..");
    snprintf(readme, sizeof readme, "%s/README.md", root);
    char *t;
    size_t len;
    if (sld_file_read(readme, 1 << 20, &t, &len, NULL)) {
        CHECK_MSG(0, "cannot read %s", readme);
        return;
    }
    char *m = strstr(t, "<!-- i2p-example");
    char *b = m ? strstr(m, "```sh\n") : NULL;
    char *e = b ? strstr(b + 6, "```") : NULL;
    CHECK(m && b && e);
    if (e) {
        FILE *f = fopen(tmp("readme.sh"), "wb");
        fwrite(b + 6, 1, (size_t)(e - b - 6), f);
        fclose(f);
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "mkdir -p %s/rd && cd %s/rd && ln -sf %s/build %s/examples %s/tests . && "
                 "sh -e ../readme.sh >../readme.out 2>&1",
                 g_tmp, g_tmp, root, root, root);
        int r = system(cmd);
        CHECK_MSG(WIFEXITED(r) && WEXITSTATUS(r) == 0, "README block failed (see %s)",
                  tmp("readme.out"));
        CHECK(file_has(tmp("rd/i2p-demo/report.json"), "\"neg\""));
        CHECK(file_has(tmp("rd/i2p-demo/manifest.json"), "\"format\""));
        CHECK(file_has(tmp("rd/i2p-demo/eval-manifest.json"), "sld-i2p-eval/1"));
    }
    sld_free(t);
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
    RUN(test_convert_cli);
    RUN(test_i2p_neg_baseline);
    RUN(test_help_version);
    RUN(test_readme_i2p_example);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    if (system(cmd) != 0)
        printf("  (could not remove %s)\n", g_tmp);
    TEST_END();
}
