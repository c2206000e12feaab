/* test_output.c — how outputs are written (core's sld_atomic_open/commit,
 * used by every writer): special files written through and never replaced,
 * symbolic links followed, planted temp-file links not followed, orphaned
 * temp files cleaned up. docs/HARDENING.md lists the guarantees. */
#include "core/core.h"
#include "io/png.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

static const char *tp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static char *slurp(const char *path, size_t *n)
{
    char *s = NULL;
    size_t len = 0;
    sld_error err;
    if (sld_file_read(path, 1 << 20, &s, &len, &err))
        return NULL;
    if (n)
        *n = len;
    return s;
}

/* Number of entries in g_dir whose name contains ".tmp." */
static int count_tmp(void)
{
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void test_regular(void)
{
    sld_error err;
    const char *p = tp("plain.txt");
    CHECK(sld_file_write_atomic(p, "one", 3, &err) == SLD_OK);
    CHECK(sld_file_write_atomic(p, "second", 6, &err) == SLD_OK);
    char *s = slurp(p, NULL);
    CHECK(s && !strcmp(s, "second"));
    sld_free(s);
    CHECK(count_tmp() == 0);
    /* a folder is refused, nothing created */
    CHECK(sld_file_write_atomic(g_dir, "x", 1, &err) == SLD_ERR_IO);
    CHECK_MSG(strstr(err.msg, "is a folder") != NULL, "%s", err.msg);
    CHECK(count_tmp() == 0);
}

/* A link planted at the name the old code used for its temp file
 * ("<out>.tmp.<pid>") must not make us overwrite the file it points to. */
static void test_planted_tmp_link(void)
{
    sld_error err;
    const char *victim = tp("victim.txt");
    CHECK(sld_file_write_atomic(victim, "precious", 8, &err) == SLD_OK);
    const char *out = tp("out.txt");
    char planted[600];
    snprintf(planted, sizeof planted, "%s.tmp.%ld", out, (long)getpid());
    CHECK(symlink(victim, planted) == 0);
    CHECK(sld_file_write_atomic(out, "output", 6, &err) == SLD_OK);
    char *s = slurp(victim, NULL);
    CHECK_MSG(s && !strcmp(s, "precious"), "victim now holds '%s'", s ? s : "(null)");
    sld_free(s);
    s = slurp(out, NULL);
    CHECK(s && !strcmp(s, "output"));
    sld_free(s);
    struct stat st;
    CHECK(lstat(planted, &st) == 0 && S_ISLNK(st.st_mode)); /* left alone */
    unlink(planted);
}

static void test_symlinks(void)
{
    sld_error err;
    const char *target = tp("target.txt"), *link = tp("link.txt");
    CHECK(sld_file_write_atomic(target, "old", 3, &err) == SLD_OK);
    CHECK(symlink("target.txt", link) == 0); /* relative, as users make them */
    CHECK(sld_file_write_atomic(link, "new", 3, &err) == SLD_OK);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    char *s = slurp(target, NULL);
    CHECK(s && !strcmp(s, "new"));
    sld_free(s);
    CHECK(count_tmp() == 0);
    /* dangling: refused, the link stays */
    const char *dang = tp("dangling.txt");
    CHECK(symlink("no-such-file", dang) == 0);
    CHECK(sld_file_write_atomic(dang, "x", 1, &err) == SLD_ERR_IO);
    CHECK_MSG(strstr(err.msg, "symbolic link") != NULL, "%s", err.msg);
    CHECK(lstat(dang, &st) == 0 && S_ISLNK(st.st_mode));
    /* a loop is reported as a loop */
    const char *l1 = tp("loop1"), *l2 = tp("loop2");
    CHECK(symlink("loop2", l1) == 0 && symlink("loop1", l2) == 0);
    CHECK(sld_file_write_atomic(l1, "x", 1, &err) == SLD_ERR_IO);
    CHECK_MSG(strstr(err.msg, "loop") != NULL, "%s", err.msg);
    CHECK(lstat(l1, &st) == 0 && S_ISLNK(st.st_mode));
}

static void test_fifo(void)
{
    sld_error err;
    const char *fifo = tp("fifo"), *got = tp("fifo-got");
    CHECK(mkfifo(fifo, 0600) == 0);
    pid_t pid = fork();
    if (pid == 0) { /* reader: copies the FIFO into a file */
        int in = open(fifo, O_RDONLY), out = open(got, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[256];
        ssize_t n;
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                _exit(1);
        _exit(0);
    }
    uint8_t rgb[8 * 8 * 3] = {0};
    CHECK(sld_png_write(fifo, rgb, 8, 8, "p", &err) == SLD_OK);
    int ws = 0;
    waitpid(pid, &ws, 0);
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    uint8_t *px;
    int w, h;
    CHECK(sld_png_read(got, &px, &w, &h, &err) == SLD_OK && w == 8 && h == 8);
    sld_free(px);
    CHECK(count_tmp() == 0);
}

/* A device node (as root: mknod c 1 3 is /dev/null) is written through:
 * `sld generate -o /dev/null` once replaced the system's /dev/null. */
static void test_device_node(void)
{
    sld_error err;
    const char *dev = tp("mynull");
    if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) != 0) {
        printf("  (mknod failed: %s; device-node case skipped, needs root)\n", strerror(errno));
    } else {
        uint8_t rgb[4 * 4 * 3] = {0};
        CHECK(sld_png_write(dev, rgb, 4, 4, NULL, &err) == SLD_OK);
        struct stat st;
        CHECK(lstat(dev, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
        unlink(dev);
    }
    /* /dev/null itself and /dev/full work everywhere: written through,
     * and a full device fails with the errno */
    CHECK(sld_file_write_atomic("/dev/null", "x", 1, &err) == SLD_OK);
    struct stat st;
    CHECK(lstat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    if (access("/dev/full", W_OK) == 0) {
        CHECK(sld_file_write_atomic("/dev/full", "x", 1, &err) == SLD_ERR_IO);
        CHECK_MSG(strstr(err.msg, "No space left") != NULL, "%s", err.msg);
    }
}

static void test_stdout(void)
{
    sld_error err;
    const char *cap = tp("stdout-capture");
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    sld_status st1 = sld_file_write_atomic("-", "to stdout", 9, &err);
    sld_status st2 = sld_file_write_atomic("/dev/stdout", "+more", 5, &err);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    CHECK(st1 == SLD_OK && st2 == SLD_OK);
    char *s = slurp(cap, NULL);
    CHECK_MSG(s && !strcmp(s, "to stdout+more"), "%s", s ? s : "(null)");
    sld_free(s);
    struct stat st;
    CHECK(lstat("/dev/stdout", &st) == 0 && S_ISLNK(st.st_mode));
}

static void set_age(const char *path, int seconds)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= seconds;
    ts[1] = ts[0];
    utimensat(AT_FDCWD, path, ts, 0);
}

static void test_tmp_cleanup(void)
{
    sld_error err;
    char sub[512];
    snprintf(sub, sizeof sub, "%s", tp("run"));
    CHECK(mkdir(sub, 0700) == 0);
    const char *names[] = {"a-0.png.tmp.123", "a-1.png.tmp.99.0a1b2c3d", "busy.png.tmp.5.ffffffff",
                           "fresh.png.tmp.7.00000000", "keep.tmp.txt", "keep.png.tmp.12.xyz"};
    char path[6][600];
    int busy = -1;
    for (int i = 0; i < 6; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", sub, names[i]);
        int fd = open(path[i], O_WRONLY | O_CREAT, 0600);
        CHECK(fd >= 0);
        if (i == 2) { /* another process still writing: holds the lock */
            CHECK(flock(fd, LOCK_EX) == 0);
            busy = fd;
        } else {
            close(fd);
        }
        if (i != 3)
            set_age(path[i], 60);
    }
    int n = -1;
    CHECK(sld_tmp_cleanup(sub, &n, &err) == SLD_OK);
    CHECK(n == 2);
    CHECK(access(path[0], F_OK) != 0 && access(path[1], F_OK) != 0);
    for (int i = 2; i < 6; i++)
        CHECK_MSG(access(path[i], F_OK) == 0, "%s removed", names[i]);
    close(busy);
    CHECK(sld_tmp_cleanup(tp("no-such-folder"), &n, &err) == SLD_ERR_IO);
    for (int i = 0; i < 6; i++)
        unlink(path[i]);
    rmdir(sub);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/sld_test_output_%ld", (long)getpid());
    if (mkdir(g_dir, 0700) != 0) {
        printf("cannot make %s\n", g_dir);
        return 1;
    }
    RUN(test_regular);
    RUN(test_planted_tmp_link);
    RUN(test_symlinks);
    RUN(test_fifo);
    RUN(test_device_node);
    RUN(test_stdout);
    RUN(test_tmp_cleanup);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", g_dir);
    TEST_END();
}
