#pragma once

// What the CPU variant loader (cpu-feats.cpp's score) checks beyond CPUID:
//  - XQ_CPU_VARIANT=<name> (e.g. x64, haswell) keeps every other variant from loading,
//    so the tests can run the code a smaller CPU would run;
//  - AVX, AVX-512 and AMX need the OS to save their state (XCR0), which CPUID does not say;
//    AMX also needs Linux's per-process permission.
// Included by the feature-check object only, which is built without any -m flags.

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static bool xq_cpu_variant_selected(const char * variant_name) {
    const char * wanted = std::getenv("XQ_CPU_VARIANT");
    if (wanted == nullptr || wanted[0] == '\0') {
        return true;
    }
    // variant_name is the library's name, "ggml-cpu-<tag>"
    const char * tag = std::strrchr(variant_name, '-');
    return tag != nullptr && std::strcmp(tag + 1, wanted) == 0;
}

static uint64_t xq_xcr0() {
#if defined(_MSC_VER)
    return _xgetbv(0); // <intrin.h>, included by cpu-feats.cpp
#else
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t) edx << 32) | eax;
#endif
}

// XCR0: SSE|AVX state (bits 1-2), AVX-512 opmask|ZMM state (5-7), AMX tile config|data (17-18)
static bool xq_os_saves_avx()    { return (xq_xcr0() & 0x6) == 0x6; }
static bool xq_os_saves_avx512() { return (xq_xcr0() & 0xe6) == 0xe6; }

// AMX needs the OS to enable tile state (XCR0 bits 17-18) and, on Linux, to grant the process
// tile data (the same request ggml's AMX buffer type makes when it starts).
static bool xq_amx_enabled() {
    if ((xq_xcr0() & 0x60000) != 0x60000) {
        return false;
    }
#if defined(__linux__)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return true;
#endif
}
