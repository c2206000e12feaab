/* sys.c — threads, clock and small file helpers. */
#include "core/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int sld_threads_max(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    return (int)(cpus > 1024 ? 4096 : SLD_THREADS_PER_CPU * cpus);
}

int sld_threads_clamp(int n)
{
    int mx = sld_threads_max();
    if (n > mx) {
        sld_log(SLD_LOG_WARN,
                "%d threads asked for; using %d (at most %d per online CPU, %ld online): more "
                "only adds overhead, and very many overflow the thread stacks",
                n, mx, SLD_THREADS_PER_CPU, sysconf(_SC_NPROCESSORS_ONLN));
        return mx;
    }
    return n;
}

void sld_threads_set(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    int mx = sld_threads_max();
    omp_set_num_threads(n > mx ? mx : n);
}

int sld_threads_get(void) { return omp_get_max_threads(); }

double sld_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sld_status sld_open_read(const char *path, int *fd_out, struct stat *st, sld_error *err)
{
    *fd_out = -1;
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            return sld_err(err, SLD_ERR_IO,
                           "%s: symbolic link loop (too many levels of links); fix the link",
                           path);
        return sld_err(err, SLD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: cannot check: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: not a regular file (%s); give a file", path,
                       S_ISDIR(st->st_mode)    ? "a folder"
                       : S_ISFIFO(st->st_mode) ? "a FIFO"
                       : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device"
                                                                       : "a special file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    return SLD_OK;
}

sld_status sld_file_read(const char *path, size_t max_bytes, char **out, size_t *len,
                         sld_error *err)
{
    *out = NULL;
    if (len)
        *len = 0;
    struct stat st;
    int fd;
    sld_status ost = sld_open_read(path, &fd, &st, err);
    if (ost)
        return ost;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return sld_err(err, SLD_ERR_FORMAT, "%s: file is %lld bytes, more than the %zu allowed",
                       path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = sld_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return sld_err(err, SLD_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (got != n || bad) {
        sld_free(buf);
        return sld_err(err, SLD_ERR_IO, "%s: read failed", path);
    }
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return SLD_OK;
}

/* ---- outputs ------------------------------------------------------------
 * Every output goes through sld_atomic_open/commit. What the path names
 * decides how it is written:
 *   "-", /dev/stdout, /dev/fd/N  that descriptor (a duplicate), written through
 *   missing or regular file  a fresh temp file beside it, renamed over it at commit
 *   symbolic link            followed: its target is written by these same rules
 *                            (a dangling link or a loop is refused, never replaced)
 *   other existing file      (device node, FIFO, socket, /dev/stdout ...) written
 *                            through in place: never renamed over or unlinked
 *   folder                   refused
 * Temp files are "<target>.tmp.<pid>.<8 hex>" created with O_EXCL|O_NOFOLLOW
 * (a planted file or link makes us pick another name, never follow it) and
 * held under flock() while written, so sld_tmp_cleanup can tell an orphan
 * of a killed process from a file another process is still writing. */

static bool tmp_random_hex(char out[9])
{
    static unsigned counter;
    unsigned char b[4];
    if (getentropy(b, sizeof b) != 0) {
        unsigned v = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL) ^
                     (__atomic_add_fetch(&counter, 0x9e3779b9u, __ATOMIC_RELAXED));
        memcpy(b, &v, 4);
    }
    snprintf(out, 9, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
    return true;
}

/* Opens path (not a regular file) for writing through, without truncation
 * or a controlling terminal. */
static sld_status open_through(sld_atomic_file *a, const char *path, sld_error *err)
{
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    a->through = true;
    a->tmp[0] = 0;
    return SLD_OK;
}

/* "-", /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N name a file
 * descriptor we already hold: writing a duplicate keeps the shell's offset
 * (appending after earlier output) and works for pipes and sockets, where
 * reopening the /proc link would fail or, for a file, start over at 0.
 * Returns the descriptor or -1. */
static int std_stream_fd(const char *path)
{
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout"))
        return STDOUT_FILENO;
    if (!strcmp(path, "/dev/stderr"))
        return STDERR_FILENO;
    const char *n = !strncmp(path, "/dev/fd/", 8)          ? path + 8
                    : !strncmp(path, "/proc/self/fd/", 14) ? path + 14
                                                           : NULL;
    if (!n || !*n || strlen(n) > 6)
        return -1;
    int v = 0;
    for (; *n; n++) {
        if (*n < '0' || *n > '9')
            return -1;
        v = v * 10 + (*n - '0');
    }
    return fcntl(v, F_GETFD) == -1 ? -1 : v;
}

sld_status sld_atomic_open(sld_atomic_file *a, const char *path, sld_error *err)
{
    a->f = NULL;
    a->path = path;
    a->through = false;
    a->tmp[0] = 0;
    a->target[0] = 0;
    if (!path || !*path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "cannot write a file with an empty path");
    int std_fd = std_stream_fd(path);
    if (std_fd >= 0) {
        int fd = dup(std_fd);
        if (fd < 0)
            return sld_err(err, SLD_ERR_IO, "%s: cannot use it: %s", path, strerror(errno));
        a->f = fdopen(fd, "wb");
        if (!a->f) {
            int e = errno;
            close(fd);
            return sld_err(err, SLD_ERR_IO, "%s: cannot open it: %s", path, strerror(e));
        }
        a->through = true;
        return SLD_OK;
    }
    if (strlen(path) >= sizeof a->target)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: path too long", path);
    snprintf(a->target, sizeof a->target, "%s", path);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real) {
            if (errno == ELOOP)
                return sld_err(err, SLD_ERR_IO,
                               "%s: symbolic link loop (too many levels of links); "
                               "not writing through it",
                               path);
            return sld_err(err, SLD_ERR_IO,
                           "%s: symbolic link whose target cannot be resolved (%s); not "
                           "replacing the link: remove it or point it at a file",
                           path, strerror(errno));
        }
        if (strlen(real) >= sizeof a->target) {
            free(real);
            return sld_err(err, SLD_ERR_INVALID_ARG, "%s: link target path too long", path);
        }
        snprintf(a->target, sizeof a->target, "%s", real);
        free(real);
        if (stat(a->target, &st) != 0)
            return sld_err(err, SLD_ERR_IO, "%s: link target %s: %s", path, a->target,
                           strerror(errno));
    } else if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return sld_err(err, SLD_ERR_IO, "%s: cannot check the output path: %s", path,
                           strerror(errno));
        st.st_mode = S_IFREG; /* missing: created like a regular file */
    }
    if (S_ISDIR(st.st_mode))
        return sld_err(err, SLD_ERR_IO, "%s: is a folder; give a file name", path);
    if (!S_ISREG(st.st_mode))
        return open_through(a, a->target, err);

    int fd = -1;
    for (int attempt = 0; attempt < 64 && fd < 0; attempt++) {
        char hex[9];
        tmp_random_hex(hex);
        if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld.%s", a->target, (long)getpid(), hex) >=
            (int)sizeof a->tmp)
            return sld_err(err, SLD_ERR_INVALID_ARG, "%s: path too long", path);
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot create: %s", a->tmp, strerror(errno));
    (void)flock(fd, LOCK_EX | LOCK_NB); /* marks the file as in use for sld_tmp_cleanup */
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        return sld_err(err, SLD_ERR_IO, "%s: cannot open: %s", a->tmp, strerror(e));
    }
    return SLD_OK;
}

/* fsync of the folder makes the rename itself durable. Failure is not fatal:
 * some file systems do not support it. */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1;
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

sld_status sld_atomic_commit(sld_atomic_file *a, sld_status st, sld_error *err)
{
    if (!a->f)
        return st ? st : sld_err(err, SLD_ERR_INTERNAL, "%s: file was not opened", a->path);
    /* buffered bytes may only fail here (e.g. ENOSPC on the final flush) */
    if (st == SLD_OK && (fflush(a->f) != 0 || ferror(a->f)))
        st = sld_err(err, SLD_ERR_IO, "%s: write failed: %s", a->path, strerror(errno));
    /* a pipe, terminal or device may not support fsync: only files must */
    if (st == SLD_OK && fsync(fileno(a->f)) != 0 &&
        !(a->through && (errno == EINVAL || errno == EROFS || errno == ENOTSUP)))
        st = sld_err(err, SLD_ERR_IO, "%s: fsync failed: %s", a->path, strerror(errno));
    if (fclose(a->f) != 0 && st == SLD_OK)
        st = sld_err(err, SLD_ERR_IO, "%s: write failed: %s", a->path, strerror(errno));
    a->f = NULL;
    if (a->through)
        return st;
    if (st == SLD_OK && rename(a->tmp, a->target) != 0)
        st = sld_err(err, SLD_ERR_IO, "%s: cannot rename into place: %s", a->path,
                     strerror(errno));
    if (st) {
        unlink(a->tmp);
        return st;
    }
    sync_parent_dir(a->target);
    return SLD_OK;
}

sld_status sld_file_write_atomic(const char *path, const void *data, size_t len, sld_error *err)
{
    sld_atomic_file a;
    sld_status st = sld_atomic_open(&a, path, err);
    if (st)
        return st;
    if (len && fwrite(data, 1, len, a.f) != len)
        st = sld_err(err, SLD_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return sld_atomic_commit(&a, st, err);
}

bool sld_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool sld_path_exists(const char *path)
{
    struct stat st;
    /* a link loop "exists": opening it then says what is wrong */
    return stat(path, &st) == 0 || errno == ELOOP;
}

char *sld_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    char *s = sld_malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

char *sld_data_find(const char *rel)
{
    const char *env = getenv("SLD_DATA_DIR");
    if (env && *env) {
        char *p = sld_path_join(env, rel);
        if (p && sld_path_exists(p))
            return p;
        sld_free(p);
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = n > 0 ? (exe[n] = 0, strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = 0;
        static const char *const up[] = {"../data", "../../data"};
        for (int i = 0; i < 2; i++) {
            char *d = sld_path_join(exe, up[i]);
            char *p = d ? sld_path_join(d, rel) : NULL;
            sld_free(d);
            if (p && sld_path_exists(p))
                return p;
            sld_free(p);
        }
    }
    char *p = sld_path_join("data", rel);
    if (p && sld_path_exists(p))
        return p;
    sld_free(p);
    return NULL;
}

/* True for names sld_atomic_open makes ("x.tmp.<pid>.<8 hex>") and for the
 * older "x.tmp.<pid>" form. */
static bool is_our_tmp_name(const char *name)
{
    const char *m = NULL;
    for (const char *p = strstr(name, ".tmp."); p; p = strstr(p + 1, ".tmp."))
        m = p;
    if (!m || m == name)
        return false;
    const char *p = m + 5;
    size_t nd = 0;
    while (p[nd] >= '0' && p[nd] <= '9')
        nd++;
    if (nd == 0)
        return false;
    p += nd;
    if (!*p)
        return true;
    if (*p != '.' || strlen(p + 1) != 8)
        return false;
    for (p++; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

sld_status sld_tmp_cleanup(const char *dir, int *n_removed, sld_error *err)
{
    if (n_removed)
        *n_removed = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return sld_err(err, SLD_ERR_IO, "%s: cannot list the folder: %s", dir, strerror(e));
    }
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_our_tmp_name(e->d_name))
            continue;
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        /* a writer holds its temp file under flock from (almost) the moment
         * it exists; the age margin covers that first instant */
        if (now - st.st_mtime < 2)
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(dfd, e->d_name, 0) == 0) {
            sld_log(SLD_LOG_INFO, "%s/%s: removed a temp file left by an interrupted run", dir,
                    e->d_name);
            if (n_removed)
                (*n_removed)++;
        }
        close(fd);
    }
    closedir(d);
    return SLD_OK;
}
