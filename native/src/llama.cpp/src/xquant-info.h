#pragma once

// Marker and version of the XQuant patch series. The engine refuses to run on a
// binary whose system info lacks "XQUANT = 1", so that node-llama-cpp's stock
// prebuilt binary can never be used by mistake.
#define XQUANT_MARKER "XQUANT = 1"
#define XQUANT_PATCH_SERIES_VERSION "0.1.0"
