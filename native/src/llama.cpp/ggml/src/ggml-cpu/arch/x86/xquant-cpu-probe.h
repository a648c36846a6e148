#pragma once

// What the CPU variant loader (cpu-feats.cpp's score) checks beyond CPUID:
//  - XQ_CPU_VARIANT=<name> (e.g. x64, haswell) keeps every other variant from loading,
//    so the tests can run the code a smaller CPU would run;
//  - AMX is usable only where the OS enables tile state (XCR0 bits 17-18), the process
//    may use it (Linux: arch_prctl), and a tile instruction really runs: some VMs
//    advertise AMX in CPUID and then fault with SIGILL, so a forked child tries one.
// Included by the feature-check object only, which is built without any -m flags.

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <sys/wait.h>
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
#if defined(__GNUC__)
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t) edx << 32) | eax;
#else
    return 0;
#endif
}

// XCR0: SSE|AVX state (bits 1-2), AVX-512 opmask|ZMM state (5-7), AMX tile config|data (17-18)
static bool xq_os_saves_avx()    { return (xq_xcr0() & 0x6) == 0x6; }
static bool xq_os_saves_avx512() { return (xq_xcr0() & 0xe6) == 0xe6; }

static bool xq_amx_runs() {
    if ((xq_xcr0() & 0x60000) != 0x60000) {
        return false;
    }
#if defined(__linux__) && defined(__GNUC__)
    const pid_t child = fork();
    if (child < 0) {
        return false;
    }
    if (child == 0) {
        // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, then configure, zero and release one tile
        if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
            _exit(1);
        }
        alignas(64) unsigned char config[64] = {};
        config[0] = 1;                      // palette 1
        config[16] = 64;                    // tile 0: 64 bytes per row
        config[48] = 16;                    // tile 0: 16 rows
        __asm__ volatile("ldtilecfg %0" : : "m"(config));
        __asm__ volatile("tilezero %%tmm0" : : :);
        __asm__ volatile("tilerelease" : : :);
        _exit(0);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
#else
    return true;
#endif
}
