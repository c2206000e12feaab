/* sys.c — threads, clock and small file helpers. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void sld_threads_set(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
}

int sld_threads_get(void) { return omp_get_max_threads(); }

double sld_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sld_status sld_file_read(const char *path, size_t max_bytes, char **out, size_t *len,
                         sld_error *err)
{
    *out = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sld_err(err, SLD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sld_err(err, SLD_ERR_IO, "%s: not a regular file", path);
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

sld_status sld_atomic_open(sld_atomic_file *a, const char *path, sld_error *err)
{
    a->f = NULL;
    a->path = path;
    if (!path || !*path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "cannot write a file with an empty path");
    if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof a->tmp)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: path too long", path);
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot create: %s", a->tmp, strerror(errno));
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
    if (st == SLD_OK && fsync(fileno(a->f)) != 0)
        st = sld_err(err, SLD_ERR_IO, "%s: fsync failed: %s", a->path, strerror(errno));
    if (fclose(a->f) != 0 && st == SLD_OK)
        st = sld_err(err, SLD_ERR_IO, "%s: write failed: %s", a->path, strerror(errno));
    a->f = NULL;
    if (st == SLD_OK && rename(a->tmp, a->path) != 0)
        st = sld_err(err, SLD_ERR_IO, "%s: cannot rename into place: %s", a->path,
                     strerror(errno));
    if (st) {
        unlink(a->tmp);
        return st;
    }
    sync_parent_dir(a->path);
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
    return stat(path, &st) == 0;
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
