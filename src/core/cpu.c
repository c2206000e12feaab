/* cpu.c — cpuid feature detection (cached) and the SLD_ISA override. */
#include "core/core.h"

#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    int done;
    bool avx2, avx512, avx512_bf16, amx_bf16;
} cpu_feats;

static cpu_feats g_cpu;

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(void)
{
    if (g_cpu.done)
        return;
    unsigned a, b, c, d;
    cpu_feats f = {0};
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE)) {
        uint64_t xcr0 = xgetbv0();
        bool ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
        bool fma = c & bit_FMA;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            f.avx2 = ymm && fma && (b & bit_AVX2);
            f.avx512 = zmm && (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512DQ) &&
                       (b & bit_AVX512VL);
            bool amx = (d & (1u << 22)) && (d & (1u << 24)); /* AMX-BF16, AMX-TILE */
            unsigned a1, b1, c1, d1;
            if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1))
                f.avx512_bf16 = f.avx512 && (a1 & (1u << 5));
            if (amx && (xcr0 & (3ull << 17)) == (3ull << 17)) {
                /* Linux needs permission for the AMX tile state (ARCH_REQ_XCOMP_PERM). */
                f.amx_bf16 = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
            }
        }
    }
    f.done = 1;
    g_cpu = f;
}

const char *sld_isa_name(sld_isa isa)
{
    switch (isa) {
    case SLD_ISA_REF: return "ref";
    case SLD_ISA_AVX2: return "avx2";
    case SLD_ISA_AVX512: return "avx512";
    case SLD_ISA_AMX: return "amx";
    }
    return "?";
}

static int g_isa_warned; /* an unknown SLD_ISA is reported once */

sld_isa sld_cpu_isa(void)
{
    detect();
    sld_isa best = g_cpu.amx_bf16 ? SLD_ISA_AMX
                   : g_cpu.avx512 ? SLD_ISA_AVX512
                   : g_cpu.avx2   ? SLD_ISA_AVX2
                                  : SLD_ISA_REF;
    const char *env = getenv("SLD_ISA");
    if (env && *env) {
        sld_isa want = best;
        if (!strcmp(env, "ref"))
            want = SLD_ISA_REF;
        else if (!strcmp(env, "avx2"))
            want = SLD_ISA_AVX2;
        else if (!strcmp(env, "avx512"))
            want = SLD_ISA_AVX512;
        else if (!strcmp(env, "amx"))
            want = SLD_ISA_AMX;
        else if (!__atomic_exchange_n(&g_isa_warned, 1, __ATOMIC_RELAXED))
            sld_log(SLD_LOG_WARN,
                    "SLD_ISA=%s is not one of ref, avx2, avx512, amx; ignored (using %s)", env,
                    sld_isa_name(best));
        if (want < best)
            best = want;
    }
    return best;
}

bool sld_cpu_has_avx512_bf16(void)
{
    detect();
    return g_cpu.avx512_bf16 && sld_cpu_isa() >= SLD_ISA_AVX512;
}

bool sld_cpu_has_amx_bf16(void)
{
    detect();
    return g_cpu.amx_bf16 && sld_cpu_isa() >= SLD_ISA_AMX;
}
