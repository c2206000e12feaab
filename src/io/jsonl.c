/*
 * jsonl.c — append-only JSON Lines logs with fsync and torn-line recovery
 * (see jsonl.h).
 */
#include "io/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct sld_jsonl {
    int fd;
    off_t size; /* bytes of whole records in the file */
    char *path;
};

/* Logs are read whole; 4 GiB is far above any run (a record is < 2 KiB). */
#define JSONL_MAX_BYTES ((size_t)4 << 30)

sld_status sld_jsonl_open(sld_jsonl **out, const char *path, sld_error *err)
{
    *out = NULL;
    /* Never through a symbolic link, never anything but a regular file: a
     * log is truncated when its last line is torn, so a link planted in a
     * run folder must not redirect that to another file. */
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP)
        return sld_err(err, SLD_ERR_IO,
                       "%s: is a symbolic link; logs are not written through links (replace "
                       "it with the file it points to)",
                       path);
    if (fd < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot open for appending: %s", path,
                       strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return sld_err(err, SLD_ERR_IO,
                           "%s: another process is writing this log (is the same command or "
                           "shard running twice?)",
                           path);
        return sld_err(err, SLD_ERR_IO,
                       "%s: cannot lock: %s (a network file system mounted without locks? "
                       "Lustre needs the flock or localflock mount option, NFS a working "
                       "lock service; docs/I2P.md, shared file systems)",
                       path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sld_err(err, SLD_ERR_IO, "%s: not a regular file; a log must be a plain file",
                       path);
    }
    /* Find the end of the last complete line, scanning back in blocks. */
    off_t end = st.st_size, keep = 0;
    char block[4096];
    while (end > 0) {
        off_t start = end > (off_t)sizeof block ? end - (off_t)sizeof block : 0;
        size_t n = (size_t)(end - start);
        if (pread(fd, block, n, start) != (ssize_t)n) {
            int e = errno;
            close(fd);
            return sld_err(err, SLD_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        size_t i = n;
        while (i > 0 && block[i - 1] != '\n')
            i--;
        if (i > 0) {
            keep = start + (off_t)i;
            break;
        }
        end = start;
    }
    if (keep != st.st_size) {
        sld_log(SLD_LOG_WARN, "%s: dropping a torn last line (%lld bytes) left by an interrupted run",
                path, (long long)(st.st_size - keep));
        if (ftruncate(fd, keep) != 0 || fsync(fd) != 0) {
            int e = errno;
            close(fd);
            return sld_err(err, SLD_ERR_IO, "%s: cannot truncate a torn line: %s", path,
                           strerror(e));
        }
    }
    sld_jsonl *j = sld_calloc(1, sizeof *j);
    char *p = sld_strdup(path);
    if (!j || !p) {
        sld_free(j);
        sld_free(p);
        close(fd);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
    }
    j->fd = fd;
    j->size = keep;
    j->path = p;
    *out = j;
    return SLD_OK;
}

sld_status sld_jsonl_append(sld_jsonl *j, const cJSON *obj, sld_error *err)
{
    char *text = cJSON_PrintUnformatted(obj);
    if (!text)
        return sld_err(err, SLD_ERR_NOMEM, "%s: cannot serialise a record", j->path);
    size_t n = strlen(text);
    char *line = sld_malloc(n + 1);
    if (!line) {
        cJSON_free(text);
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", j->path);
    }
    memcpy(line, text, n);
    line[n] = '\n';
    cJSON_free(text);
    size_t done = 0;
    int e = 0;
    while (done < n + 1) {
        ssize_t w = pwrite(j->fd, line + done, n + 1 - done, j->size + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)w;
    }
    sld_free(line);
    if (!e && fsync(j->fd) != 0)
        e = errno;
    if (e) {
        /* Leave only whole records behind (best effort). */
        if (ftruncate(j->fd, j->size) != 0)
            sld_log(SLD_LOG_WARN, "%s: could not remove a partial record", j->path);
        return sld_err(err, SLD_ERR_IO, "%s: append failed: %s", j->path, strerror(e));
    }
    j->size += (off_t)(n + 1);
    return SLD_OK;
}

void sld_jsonl_close(sld_jsonl *j)
{
    if (!j)
        return;
    close(j->fd); /* releases the flock */
    sld_free(j->path);
    sld_free(j);
}

sld_status sld_jsonl_read(const char *path, int missing_ok, sld_jsonl_fn fn, void *user,
                          int *n_torn, sld_error *err)
{
    if (n_torn)
        *n_torn = 0;
    if (missing_ok && !sld_path_exists(path))
        return SLD_OK;
    char *buf;
    size_t len;
    sld_status st = sld_file_read(path, JSONL_MAX_BYTES, &buf, &len, err);
    if (st)
        return st;
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) {
            if (n_torn)
                *n_torn = 1;
            break;
        }
        *nl = 0;
        char *s = buf + pos;
        pos = (size_t)(nl - buf) + 1;
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        if (!*s)
            continue;
        cJSON *obj = cJSON_Parse(s);
        if (!obj || !cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            sld_free(buf);
            return sld_err(err, SLD_ERR_FORMAT, "%s: line %d is not a JSON object", path, line);
        }
        int stop = fn(obj, line, user);
        cJSON_Delete(obj);
        if (stop)
            break;
    }
    sld_free(buf);
    return SLD_OK;
}
