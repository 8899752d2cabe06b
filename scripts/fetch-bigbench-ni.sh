#!/usr/bin/env bash
# Fetch BIG-bench 1.0.0 natural_instructions (61 subtasks, 10 source datasets) for `tovd evaluate`.
#
#   scripts/fetch-bigbench-ni.sh [CACHE_DIR]        (default ./.cache/bigbench-ni, git-ignored)
#
# 1. `pip download` the bigbench 1.0.0 sdist (~358 MB) into CACHE/download (reused when present),
# 2. check its SHA-256 against the pinned value (same as PyPI's simple index reports),
# 3. extract only */bigbench/benchmark_tasks/natural_instructions/*/task.json into CACHE/extract,
# 4. convert to JSONL with the Swift converter (BigBenchNIConverter) through the tovd CLI when it has the
#    `data convert-bigbench-ni` subcommand; set TOVD_BIN to a built binary to skip `swift run`, or
#    SKIP_CONVERT=1 to stop after extraction (e.g. when `tovd data fetch bigbench-ni` drives the conversion).
# Idempotent: CACHE/.done records the checksums; a re-run with matching files does nothing.
set -euo pipefail

CACHE="${1:-./.cache/bigbench-ni}"
SDIST_NAME="bigbench-1.0.0.tar.gz"
SDIST_SHA256="1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
SDIST_BYTES=358249635
SUBTASKS=61

DOWNLOAD="$CACHE/download"
EXTRACT="$CACHE/extract"
TASKS="$EXTRACT/bigbench-1.0.0/bigbench/benchmark_tasks/natural_instructions"
STAMP="$CACHE/.done"
SDIST="$DOWNLOAD/$SDIST_NAME"

log() { printf 'fetch-bigbench-ni: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# The stamp lists "sha256  path" for the sdist and every output; `sha256sum -c` re-verifies them all.
if [[ -f "$STAMP" ]] && (cd "$CACHE" && sha256sum --quiet -c .done >/dev/null 2>&1); then
    log "up to date ($CACHE); delete $STAMP to redo"
    exit 0
fi

mkdir -p "$DOWNLOAD" "$EXTRACT"

if [[ -f "$SDIST" && "$(sha256_of "$SDIST")" == "$SDIST_SHA256" ]]; then
    log "reusing $SDIST"
else
    rm -f "$SDIST"
    command -v pip >/dev/null || command -v pip3 >/dev/null || die "pip is needed to download the bigbench sdist (apt-get install python3-pip)"
    PIP=$(command -v pip || command -v pip3)
    log "downloading $SDIST_NAME (~$((SDIST_BYTES / 1000000)) MB) with pip"
    # Only bigbench itself as an sdist: with `--no-binary :all:` pip also builds setuptools and the other
    # build requirements from source to prepare its metadata, which took minutes and more on 2 cores.
    # The index has been seen to list only bigbench 0.0.1 for a while (2026-12-04): say how to go on
    # from a copy of the sdist instead of ending on pip's "no matching distribution".
    "$PIP" download --no-deps --no-binary bigbench bigbench==1.0.0 -d "$DOWNLOAD" >&2 \
        || die "pip could not download bigbench==1.0.0 (is PyPI reachable, and does it still list 1.0.0?). With a copy of $SDIST_NAME from elsewhere (SHA-256 $SDIST_SHA256), put it at $SDIST and run this again."
    [[ -f "$SDIST" ]] || die "pip did not produce $SDIST"
    got=$(sha256_of "$SDIST")
    [[ "$got" == "$SDIST_SHA256" ]] || die "SHA-256 mismatch for $SDIST: got $got, want $SDIST_SHA256 (delete it and retry)"
fi

count=$(find "$TASKS" -mindepth 2 -maxdepth 2 -name task.json 2>/dev/null | wc -l || true)
if [[ "$count" -ne "$SUBTASKS" ]]; then
    log "extracting natural_instructions/*/task.json"
    rm -rf "$EXTRACT"; mkdir -p "$EXTRACT"
    tar -xzf "$SDIST" -C "$EXTRACT" --wildcards '*/bigbench/benchmark_tasks/natural_instructions/*/task.json'
    count=$(find "$TASKS" -mindepth 2 -maxdepth 2 -name task.json | wc -l)
    [[ "$count" -eq "$SUBTASKS" ]] || die "expected $SUBTASKS subtasks, found $count in $TASKS"
fi
log "$count subtasks in $TASKS"

if [[ "${SKIP_CONVERT:-0}" == "1" ]]; then
    log "SKIP_CONVERT=1: stopping after extraction"
    exit 0
fi

if [[ -n "${TOVD_BIN:-}" ]]; then
    "$TOVD_BIN" data convert-bigbench-ni "$TASKS" "$CACHE" >&2
else
    swift run -c release tovd data convert-bigbench-ni "$TASKS" "$CACHE" >&2
fi
[[ -f "$CACHE/manifest.json" && -f "$CACHE/all.jsonl" ]] || die "conversion did not write manifest.json and all.jsonl"

# Stamp: checksums of the sdist and all outputs, relative to CACHE.
(
    cd "$CACHE"
    { sha256sum "download/$SDIST_NAME" manifest.json all.jsonl; find jsonl -name '*.jsonl' -print0 | sort -z | xargs -0 sha256sum; } > .done.tmp
    mv .done.tmp .done
)
log "done: $(grep -c '' "$CACHE/all.jsonl") rows in $CACHE/all.jsonl"
