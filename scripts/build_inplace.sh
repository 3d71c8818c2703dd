#!/usr/bin/env bash
# Rebuild pygen/_C in place (incremental, ninja). Serialised with a lock so that several
# people (or agents) working in one tree never run two builds into the same build/ folder.
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/pygen_build.lock python setup.py build_ext --inplace "$@"
