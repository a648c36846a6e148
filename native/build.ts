// Builds the patched llama.cpp and the node-llama-cpp addon, and installs the
// result where node-llama-cpp loads local builds.
//
//   npm run build:native [-- --cuda | --metal] [--force] [--install]
//   tsx native/build.ts --sources-only   (only step 1-3: the patched tree in native/build/source)
//
// Steps: export llama.cpp from node-llama-cpp's bundle, apply node-llama-cpp's
// patches and then ours (native/patches/*.patch, in order), copy our sources
// (native/src), build with cmake + ninja + ccache. Finished builds are kept in
// a cache directory outside the clone, keyed by a hash of every input.
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { builtCpuVariantTags } from "./cpu-variants.ts";
import { cacheDir, installedBinDir, localBuildName, nativeDir, nodeLlamaCppDir, repoRoot } from "./paths.ts";

type Gpu = false | "cuda" | "metal";

const args = process.argv.slice(2);
const gpu: Gpu = args.includes("--cuda") ? "cuda" : args.includes("--metal") ? "metal" : false;
const force = args.includes("--force");
const sourcesOnly = args.includes("--sources-only");

const workDir = path.join(nativeDir, "build");
const sourceDir = path.join(workDir, "source");
const buildDir = path.join(workDir, gpu ? `out-${gpu}` : "out");
const ccacheDir = path.join(cacheDir, "ccache");
const nlcLlamaDir = path.join(nodeLlamaCppDir, "llama");
const installedTools = ["llama-perplexity", "llama-bench", "llama-finetune", "llama-quantize", "xquant-eval", "xquant-bench", "xquant-memory", "xquant-native-tests", "xquant-ops-tests"];
// On x86-64 the CPU backend is built once per variant (native/cpu-variants.ts) and the
// best one the CPU really runs is loaded at run time, so one build runs on any x86-64 CPU.
const cpuVariantTargets = process.arch === "x64" ? builtCpuVariantTags.map((tag) => `ggml-cpu-${tag}`) : ["ggml-cpu"];
const buildTargets = ["llama-addon", ...installedTools, ...cpuVariantTargets];

class BuildError extends Error {}

function log(message: string): void {
    console.log(`[build:native] ${message}`);
}

function run(command: string, commandArgs: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): string {
    const result = spawnSync(command, commandArgs, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: options.quiet ? ["ignore", "pipe", "pipe"] : "inherit",
        encoding: "utf8",
    });
    if (result.error) throw new BuildError(`could not run ${command}: ${result.error.message}`);
    if (result.status !== 0) {
        const output = options.quiet ? `\n${result.stdout}${result.stderr}` : "";
        throw new BuildError(`${command} ${commandArgs.join(" ")} failed with exit code ${result.status}${output}`);
    }
    return result.stdout ?? "";
}

function hasCommand(command: string): boolean {
    return spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0;
}

function requireTools(): void {
    const missing: string[] = [];
    if (!hasCommand("cmake")) missing.push("cmake");
    if (!hasCommand("ninja")) missing.push("ninja (Debian: ninja-build)");
    if (!hasCommand("git")) missing.push("git");
    if (!hasCommand(process.env.CXX ?? "c++")) missing.push("a C++ compiler (Debian: g++)");
    if (gpu === "cuda" && !hasCommand("nvcc")) missing.push("nvcc (the CUDA toolkit)");
    if (missing.length > 0) {
        throw new BuildError(`missing build tools: ${missing.join(", ")}. On Debian/Ubuntu: apt-get install cmake ninja-build g++ ccache`);
    }
    if (!hasCommand("ccache")) log("ccache not found: building without a compiler cache (apt-get install ccache)");
}

function listFiles(dir: string): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((entry) => entry.isFile())
        .map((entry) => path.join(entry.parentPath, entry.name))
        .sort();
}

function cmakeOptions(): Record<string, string> {
    const platform = `${os.platform() === "win32" ? "win" : os.platform() === "darwin" ? "mac" : "linux"}-${process.arch}`;
    const options: Record<string, string> = {
        CMAKE_BUILD_TYPE: "Release",
        CMAKE_JS_INC: path.join(repoRoot, "node_modules", "node-api-headers", "include"),
        NLC_CURRENT_PLATFORM: platform,
        NLC_TARGET_PLATFORM: platform,
        GGML_BUILD_NUMBER: "1",
        // never tuned to the building CPU: a package built on AVX-512 must run on AVX2
        GGML_NATIVE: "OFF",
        GGML_BACKEND_DL: "ON",
        GGML_CPU_ALL_VARIANTS: process.arch === "x64" ? "ON" : "OFF",
        GGML_CCACHE: "OFF",
        GGML_METAL: gpu === "metal" ? "ON" : "OFF",
        GGML_CUDA: gpu === "cuda" ? "ON" : "OFF",
        LLAMA_BUILD_TOOLS: "ON",
        LLAMA_BUILD_EXAMPLES: "ON",
        LLAMA_BUILD_TESTS: "OFF",
        LLAMA_BUILD_SERVER: "OFF",
        LLAMA_BUILD_APP: "OFF",
        LLAMA_CURL: "OFF",
        LLAMA_HTTPLIB: "OFF",
        LLAMA_OPENSSL: "OFF",
        LLAMA_BUILD_BORINGSSL: "OFF",
    };
    if (process.arch === "x64") options.GGML_CPU_VARIANT_LIST = builtCpuVariantTags.join(";");
    if (gpu === "cuda" && process.env.CMAKE_CUDA_ARCHITECTURES) options.CMAKE_CUDA_ARCHITECTURES = process.env.CMAKE_CUDA_ARCHITECTURES;
    return options;
}

// Every input that changes the binaries: our patches and sources, this script,
// node-llama-cpp's bundle and patches, the cmake options and the compiler.
function inputsHash(options: Record<string, string>): string {
    const hash = crypto.createHash("sha256");
    const nlcPackage = JSON.parse(fs.readFileSync(path.join(nodeLlamaCppDir, "package.json"), "utf8")) as { version: string };
    hash.update(`node-llama-cpp ${nlcPackage.version}\n`);
    hash.update(JSON.stringify({ ...options, CMAKE_JS_INC: "" }));
    hash.update(run(process.env.CXX ?? "c++", ["--version"], { quiet: true }));
    const inputFiles = [
        ...listFiles(path.join(nativeDir, "patches")),
        path.join(nativeDir, "cpu-variants.ts"),
        ...listFiles(path.join(nativeDir, "src")),
        ...listFiles(path.join(nativeDir, "tools")),
        ...listFiles(path.join(nativeDir, "tests")).filter((file) => !file.endsWith(".ts")),
        path.join(nativeDir, "build.ts"),
        ...listFiles(path.join(nlcLlamaDir, "patches")),
        ...listFiles(path.join(nlcLlamaDir, "addon")),
        path.join(nlcLlamaDir, "CMakeLists.txt"),
        path.join(nlcLlamaDir, "gitRelease.bundle"),
    ];
    for (const file of inputFiles) {
        hash.update(path.relative(repoRoot, file));
        hash.update(fs.readFileSync(file));
    }
    return hash.digest("hex").slice(0, 16);
}

function ourPatches(): string[] {
    return listFiles(path.join(nativeDir, "patches")).filter((file) => file.endsWith(".patch"));
}

// The source tree is its own git repo with one base commit (stock llama.cpp +
// node-llama-cpp's patch), so `git diff` there is how a new patch is written.
function prepareSources(): void {
    log("preparing sources from node-llama-cpp's llama.cpp bundle");
    fs.rmSync(sourceDir, { recursive: true, force: true });
    fs.mkdirSync(sourceDir, { recursive: true });
    const llamaCppDir = path.join(sourceDir, "llama.cpp");
    run("git", ["clone", "--quiet", path.join(nlcLlamaDir, "gitRelease.bundle"), llamaCppDir]);
    fs.rmSync(path.join(llamaCppDir, ".git"), { recursive: true, force: true });
    fs.copyFileSync(path.join(nlcLlamaDir, "CMakeLists.txt"), path.join(sourceDir, "CMakeLists.txt"));
    for (const folder of ["addon", "cmake"]) {
        fs.cpSync(path.join(nlcLlamaDir, folder), path.join(sourceDir, folder), { recursive: true });
    }
    const git = (gitArgs: string[]) => run("git", ["-c", "user.name=build", "-c", "user.email=build@localhost", ...gitArgs], { cwd: sourceDir, quiet: true });
    git(["init", "--quiet"]);
    for (const patch of listFiles(path.join(nlcLlamaDir, "patches"))) {
        git(["apply", "--directory=llama.cpp", patch]);
    }
    git(["add", "--all"]);
    git(["commit", "--quiet", "-m", "base: llama.cpp from node-llama-cpp + its patches"]);
    for (const patch of ourPatches()) {
        log(`applying ${path.relative(repoRoot, patch)}`);
        try {
            git(["apply", "--whitespace=nowarn", patch]);
        } catch (error) {
            throw new BuildError(`patch ${path.basename(patch)} does not apply: ${(error as Error).message}`);
        }
    }
    const ourSources = path.join(nativeDir, "src");
    if (fs.existsSync(ourSources)) fs.cpSync(ourSources, sourceDir, { recursive: true });
    for (const folder of ["tools", "tests"]) {
        fs.cpSync(path.join(nativeDir, folder), path.join(sourceDir, `xquant-${folder}`), { recursive: true, filter: (file) => !file.endsWith(".ts") });
    }
}

function compile(options: Record<string, string>): void {
    fs.mkdirSync(ccacheDir, { recursive: true });
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        CCACHE_DIR: ccacheDir,
        CCACHE_BASEDIR: workDir,
        CCACHE_NOHASHDIR: "true",
        CCACHE_MAXSIZE: process.env.CCACHE_MAXSIZE ?? "5G",
    };
    const launcher = hasCommand("ccache") ? ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_CUDA_COMPILER_LAUNCHER=ccache"] : [];
    log(`configuring (${gpu || "cpu"})`);
    run("cmake", ["-S", sourceDir, "-B", buildDir, "-G", "Ninja", ...launcher,
        ...Object.entries(options).map(([key, value]) => `-D${key}=${value}`)], { env, quiet: true });
    const jobs = String(process.env.XQ_BUILD_JOBS ?? os.availableParallelism());
    // outputs of an earlier configuration (say, a CPU backend built before the variants) must not be collected
    fs.rmSync(path.join(buildDir, "bin"), { recursive: true, force: true });
    if (hasCommand("ccache")) run("ccache", ["--zero-stats"], { env, quiet: true });
    log(`compiling ${buildTargets.join(", ")} with ${jobs} jobs`);
    run("cmake", ["--build", buildDir, "--parallel", jobs, "--target", ...buildTargets], { env });
    if (hasCommand("ccache")) log(`ccache: ${run("ccache", ["--print-stats"], { env, quiet: true }).split("\n").filter((line) => /^(direct_cache_hit|cache_miss)\s/.test(line)).join(", ")}`);
}

// Collects the addon, the llama/ggml shared libraries and the tools into one
// folder whose rpath is $ORIGIN.
function collectOutputs(destination: string, options: Record<string, string>): void {
    fs.rmSync(destination, { recursive: true, force: true });
    fs.mkdirSync(destination, { recursive: true });
    const binDir = path.join(buildDir, "bin");
    for (const name of fs.readdirSync(binDir)) {
        const isExecutable = !/\.(so|dylib|dll)$/.test(name);
        if (isExecutable && !installedTools.includes(name.replace(/\.exe$/, ""))) continue;
        fs.cpSync(path.join(binDir, name), path.join(destination, name), { recursive: true });
    }
    fs.copyFileSync(path.join(buildDir, "llama-addon.node"), path.join(destination, "llama-addon.node"));
    const llamaCppInfo = JSON.parse(fs.readFileSync(path.join(nlcLlamaDir, "llama.cpp.info.json"), "utf8")) as { tag: string; llamaCppGithubRepo: string };
    const buildMetadata = {
        buildOptions: {
            customCmakeOptions: options,
            progressLogs: true,
            platform: process.platform === "win32" ? "win" : process.platform === "darwin" ? "mac" : "linux",
            platformInfo: { name: os.type(), version: os.release() },
            arch: process.arch,
            gpu,
            llamaCpp: { repo: llamaCppInfo.llamaCppGithubRepo, release: llamaCppInfo.tag },
        },
    };
    fs.writeFileSync(path.join(destination, "_nlcBuildMetadata.json"), JSON.stringify(buildMetadata));
}

function install(cachedBuild: string, hash: string): void {
    const buildFolder = path.dirname(installedBinDir);
    fs.rmSync(buildFolder, { recursive: true, force: true });
    fs.cpSync(cachedBuild, installedBinDir, { recursive: true });
    fs.writeFileSync(path.join(buildFolder, "buildDone.status"), "");
    fs.writeFileSync(path.join(buildFolder, "xquant-build-hash.txt"), hash);
    fs.writeFileSync(path.join(nlcLlamaDir, "lastBuild.json"), JSON.stringify({ folderName: localBuildName }));
    log(`installed into ${path.relative(repoRoot, installedBinDir)}`);
}

function main(): void {
    const started = Date.now();
    if (!fs.existsSync(nodeLlamaCppDir)) throw new BuildError("node_modules/node-llama-cpp is missing: run `npm ci` first");
    requireTools();
    if (sourcesOnly) {
        prepareSources();
        log(`sources ready in ${path.relative(repoRoot, sourceDir)}`);
        return;
    }
    const options = cmakeOptions();
    const hash = inputsHash(options);
    const cachedBuild = path.join(cacheDir, "native-builds", `${localBuildName}-${gpu || "cpu"}-${hash}`);
    const installedHashFile = path.join(path.dirname(installedBinDir), "xquant-build-hash.txt");
    if (!force && gpu === false && fs.existsSync(path.join(installedBinDir, "_nlcBuildMetadata.json")) && fs.existsSync(installedHashFile) && fs.readFileSync(installedHashFile, "utf8") === hash) {
        log(`up to date (inputs ${hash})`);
        return;
    }
    if (force || !fs.existsSync(path.join(cachedBuild, "llama-addon.node"))) {
        log(`building inputs ${hash}; a cold build takes about 5 minutes on 2 cores, seconds with a warm ccache`);
        prepareSources();
        compile(options);
        collectOutputs(cachedBuild, options);
    } else {
        log(`reusing cached build ${hash}`);
    }
    // GPU builds are for the GPU machine and the compile checks; only the
    // default (CPU) build is installed for node-llama-cpp here unless asked.
    if (gpu === false || args.includes("--install")) install(cachedBuild, hash);
    else log(`built into ${cachedBuild}`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

try {
    main();
} catch (error) {
    if (error instanceof BuildError) {
        console.error(`[build:native] error: ${error.message}`);
        process.exit(1);
    }
    throw error;
}
