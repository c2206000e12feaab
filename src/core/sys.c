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

sld_status sld_file_write_atomic(const char *path, const void *data, size_t len, sld_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return sld_err(err, SLD_ERR_IO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    int rs = fsync(fd), e = errno;
    int rc = close(fd);
    if (rs != 0 || rc != 0) {
        if (rs == 0)
            e = errno;
        unlink(tmp);
        return sld_err(err, SLD_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return sld_err(err, SLD_ERR_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return SLD_OK;
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
