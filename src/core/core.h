/*
 * core.h — internal foundations shared by every module: error helpers,
 * allocation (with fault injection for tests), logging, the activation arena,
 * CPU feature detection and thread control.
 *
 * Invariants: nothing here keeps mutable global state except the log sink,
 * the allocation fault-injection counter (tests only) and the cached cpuid
 * result, all set once before heavy use.
 */
#ifndef SLD_CORE_H
#define SLD_CORE_H

#include "sld.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ---------------------------------------------------------- */

/* Fills err (if not NULL) with code and a printf-style message; returns code,
 * so callers can write `return sld_err(err, SLD_ERR_IO, "...", ...)`. */
sld_status sld_err(sld_error *err, sld_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an existing message (adds context on the way up). */
sld_status sld_err_prefix(sld_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sld_err_clear(sld_error *err);

/* ---- allocation ------------------------------------------------------ */

/* All library allocation goes through these so tests can make the Nth call
 * fail. sld_malloc(0) returns a valid unique pointer. */
void *sld_malloc(size_t n);
void *sld_calloc(size_t count, size_t size);
void *sld_realloc(void *p, size_t n);
void *sld_malloc_aligned(size_t n); /* 64-byte aligned; free with sld_free */
void sld_free(void *p);
char *sld_strdup(const char *s);
/* Tests: make allocation number n (counting from 1 from now) and every later
 * one fail; 0 disables. Returns the number of allocations since the last call. */
long sld_alloc_fail_at(long n);
/* Overflow-checked a*b; returns false on overflow. */
static inline bool sld_mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Clamps v into [0, 1] for any float: NaN -> 0, -Inf -> 0, +Inf -> 1, so a
 * following float -> uint8 conversion is always defined. */
static inline float sld_unit_clamp(float v)
{
    return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
}

/* The byte offset of the first invalid UTF-8 sequence in s[0..n) (overlong
 * forms, surrogates and code points above U+10FFFF are invalid), or -1. */
long sld_utf8_invalid_at(const char *s, size_t n);

/* ---- logging --------------------------------------------------------- */

void sld_log(sld_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- arena ------------------------------------------------------------ */

/* One 64-byte-aligned block carved by a bump pointer; mark/reset for scoped
 * temporaries. No per-allocation free. In planning mode (plan = true, no
 * block) allocations only count bytes into peak and return NULL, so a
 * network can size its arena by running its forward pass once without
 * computing; then sld_arena_init(peak). */
typedef struct {
    uint8_t *base;
    size_t cap;
    size_t used;
    size_t peak;
    bool plan;     /* count only */
    bool overflow; /* an allocation did not fit (a planning bug) */
} sld_arena;

sld_status sld_arena_init(sld_arena *a, size_t cap, sld_error *err);
void sld_arena_free(sld_arena *a);
/* Returns NULL when the arena is exhausted (and sets overflow: a planning
 * bug, callers report SLD_ERR_INTERNAL), and always in planning mode. */
void *sld_arena_alloc(sld_arena *a, size_t n);
static inline float *sld_arena_floats(sld_arena *a, size_t n)
{
    return (float *)sld_arena_alloc(a, n * sizeof(float));
}
static inline size_t sld_arena_mark(const sld_arena *a) { return a->used; }
static inline void sld_arena_reset(sld_arena *a, size_t mark) { a->used = mark; }

/* ---- CPU features ----------------------------------------------------- */

typedef enum { SLD_ISA_REF = 0, SLD_ISA_AVX2, SLD_ISA_AVX512, SLD_ISA_AMX } sld_isa;
/* The best ISA this CPU supports, lowered by the SLD_ISA environment
 * variable (ref|avx2|avx512|amx). Computed once. */
sld_isa sld_cpu_isa(void);
bool sld_cpu_has_avx512_bf16(void);
bool sld_cpu_has_amx_bf16(void);
const char *sld_isa_name(sld_isa isa);

/* ---- threads ---------------------------------------------------------- */

/* Sets the OpenMP thread count for this thread's parallel regions (0 = all
 * cores). Our kernels split only independent outputs across threads, so
 * results do not depend on it. */
void sld_threads_set(int n);
/* One bound on thread counts for every command and entry point:
 * SLD_THREADS_PER_CPU x the online CPUs (100000 threads once overflowed
 * libgomp's stacks; 4096 on 2 CPUs made a 0.4 s job take minutes).
 * sld_threads_clamp returns min(n, sld_threads_max()) and logs a warning
 * saying so when it lowers n; sld_threads_set applies the bound silently. */
#define SLD_THREADS_PER_CPU 4
int sld_threads_max(void);
int sld_threads_clamp(int n);
int sld_threads_get(void);

/* ---- time ------------------------------------------------------------- */
double sld_time_now(void); /* monotonic seconds */

/* ---- files ------------------------------------------------------------ */

/* Opens path for reading, refusing what is not a regular file (a FIFO
 * given as weights once hung in open(): it is opened non-blocking, then
 * checked) and naming a symbolic link loop as such. *st is filled. */
struct stat;
sld_status sld_open_read(const char *path, int *fd, struct stat *st, sld_error *err);
/* Reads a whole file into a NUL-terminated buffer (caller frees with
 * sld_free). Refuses files above max_bytes. */
sld_status sld_file_read(const char *path, size_t max_bytes, char **out, size_t *len,
                         sld_error *err);
/* Writes data to path atomically: a unique temp file beside it, fsync,
 * rename, fsync of the folder. A failure (full disk, ...) leaves no partial
 * file. What path names decides the write (see sld_atomic_open). */
sld_status sld_file_write_atomic(const char *path, const void *data, size_t len, sld_error *err);

/* The same mechanism for writers that stream (libpng): open, write to a->f,
 * then commit. commit takes the writer's status: on success it flushes,
 * fsyncs, renames into place and fsyncs the folder; on failure (or when any
 * step fails) it removes the temp file. Either way a->f is closed and the
 * returned status is final.
 *   path "-" or /dev/stdout: standard output (/dev/stderr, /dev/fd/N: that
 *   descriptor), written through a duplicate of it. An existing non-regular file (device, FIFO,
 *   /dev/stdout): written through in place, never replaced. A symbolic
 *   link: its target is written (a dangling link or a loop is an error; the
 *   link is never replaced). A folder: an error. Otherwise the temp file is
 *   "<target>.tmp.<pid>.<8 hex>", created with O_EXCL|O_NOFOLLOW and held
 *   under flock() until commit. */
typedef struct {
    FILE *f;
    const char *path;   /* as given (for messages) */
    bool through;       /* writing in place: no temp file, no rename */
    char target[4096];  /* path with a symbolic link resolved */
    char tmp[4160];
} sld_atomic_file;
sld_status sld_atomic_open(sld_atomic_file *a, const char *path, sld_error *err);
sld_status sld_atomic_commit(sld_atomic_file *a, sld_status st, sld_error *err);
/* Removes temp files of our naming in dir left by a killed process: those
 * no process holds (flock) and older than 2 s. Others' files and temp files
 * being written are kept. *n_removed (may be NULL) counts removals. */
sld_status sld_tmp_cleanup(const char *dir, int *n_removed, sld_error *err);
bool sld_path_is_dir(const char *path);
/* stat succeeds, or the path is a symbolic link loop (so the opener reports
 * the loop rather than a missing file). */
bool sld_path_exists(const char *path);
/* Joins a and b with one '/', into a new string (caller frees). */
char *sld_path_join(const char *a, const char *b);
/* Finds a file shipped in the source tree's data/ folder (rel like
 * "clip/vocab.json"): $SLD_DATA_DIR/rel, then ../data/rel and ../../data/rel
 * next to the executable (build/sld, build/tests/x), then data/rel under the
 * working folder. Returns a new string (caller frees) or NULL. */
char *sld_data_find(const char *rel);

/* ---- hashing ---------------------------------------------------------- */

/* SHA-256 (FIPS 180-4), streaming. */
typedef struct {
    uint32_t h[8];
    uint64_t n;
    uint8_t buf[64];
    size_t nbuf;
} sld_sha256;
void sld_sha256_init(sld_sha256 *s);
void sld_sha256_update(sld_sha256 *s, const void *data, size_t len);
void sld_sha256_final(sld_sha256 *s, uint8_t out[32]);
void sld_sha256_hex(const uint8_t digest[32], char hex[65]); /* lowercase */
void sld_sha256_str(const void *data, size_t len, char hex[65]);
/* n whole 64-byte blocks into the state h; accel = 1 uses the CPU's SHA
 * extensions when present (and SLD_ISA is not ref). For tests. */
void sld_sha256_blocks(uint32_t h[8], const uint8_t *p, size_t n, int accel);
/* SHA-256 of a regular file's bytes as 64 lowercase hex digits. */
sld_status sld_sha256_file(const char *path, char hex[65], sld_error *err);

#endif /* SLD_CORE_H */
