#!/usr/bin/env bash
# Download, into .whl/, the wheels that a lent GPU machine (the 'cuda' image: PyTorch, transformers,
# accelerate, tokenizers, sympy, numpy, typer, rich… but no LangChain) lacks to run moss-agent, at the
# versions installed here, for CPython 3.12 on x86-64. On the device, before running moss-agent:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD
# and carry .whl (listed in .git/info/exclude). Without sniffio and distro, langchain-core imports
# fail there ('module langchain_core.runnables.base not found'), as they did on 2026-11-27.
set -euo pipefail
packages=(
    annotated-types bm25s distro httpcore2 httpx2 jsonpatch jsonpointer langchain-core
    langchain-protocol langsmith numexpr orjson pydantic pydantic-core requests-toolbelt sniffio
    tenacity truststore typing-extensions typing-inspection uuid-utils websockets zstandard
)
mkdir -p .whl
for package in "${packages[@]}"; do
    version=$(python3 -m pip show "$package" 2>/dev/null | awk '/^Version:/{print $2}')
    if [[ -z "$version" ]]; then
        echo "$package is not installed here; install moss-agent[dev] first" >&2
        exit 1
    fi
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
        -d .whl "$package==$version"
done
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
ls .whl
