#pragma once

#include <functional>

// Runs work on the process's one evaluation thread and waits for it.
//
// ggml's CPU backend is built with OpenMP, which keeps one thread team per thread
// that starts a parallel region. node-llama-cpp runs each llama_decode and each
// model load as a libuv AsyncWorker, on whichever of libuv's pool threads is free,
// so the process grew several teams (model loads start one too: the AMX weight
// conversion). Once libgomp manages more threads than there are cores, it spins
// only ~100 iterations at each barrier before sleeping in the kernel, and every
// graph node then pays futex wake-ups: with 2 threads on 2 cores decode ran slower
// than with 1 (docs/performance.md, "Threads"). Decoding and loading on one thread
// keep one team, as in llama.cpp's own tools.
void addonRunOnEvaluationThread(const std::function<void()> & work);
