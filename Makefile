# mlcache: PGXS build.  The version lives only in mlcache.control.
EXTENSION = mlcache mlcache_lms
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" mlcache.control)

MODULE_big = mlcache
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
# Every object depends on every header: PGXS tracks no header dependencies.
MLCACHE_HEADERS = $(wildcard src/*.h)
DATA = $(wildcard extension/*.sql)
# Generated from mlcache_lms.control.in (see below).
EXTRA_CLEAN = mlcache_lms.control

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK = -lhiredis

# pg_regress pairs in sql/ and expected/, run with Redis up.
REGRESS = setup get levels ttl l1_memory keys bad_input invalidate watch worker define l3 ops track warm maintenance stale privileges revoke settings rls lms lms_cache lms_ops lms_invalidate

# Run separately by test/run_tests.sh with Redis stopped.
REGRESS_DOWN = setup redis_down
# Isolation specs live under test/isolation.
ISOLATION = $(basename $(notdir $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation

ifdef MLCACHE_WERROR
PG_CFLAGS += -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
endif

# No LLVM bitcode: nothing here benefits from JIT inlining, and it needs clang.
override with_llvm = no
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The databases the suites run in (their names make the default key
# prefixes); set after PGXS, whose Makefile.global sets them too.
CONTRIB_TESTDB = mlcache_regress
ISOLATION_TESTDB = mlcache_isolation

META.json: META.json.in mlcache.control
	sed 's/@EXTVERSION@/$(EXTVERSION)/g' $< > $@

# The LMS pack is versioned with the core.
mlcache_lms.control: mlcache_lms.control.in mlcache.control
	sed 's/@EXTVERSION@/$(EXTVERSION)/g' $< > $@

all: META.json mlcache_lms.control

.PHONY: test demo bench bench-scale faults fuzz
# The two set-up commands: each installs missing packages, builds, installs,
# starts throwaway PostgreSQL and Redis servers, runs, and stops them again.
test:
	bash test/deps.sh
	$(MAKE) MLCACHE_WERROR=1 all
	$(MAKE) install
	bash test/harness.sh bash test/run_tests.sh

demo:
	bash test/deps.sh
	$(MAKE) all
	$(MAKE) install
	bash test/harness.sh bash demo/demo.sh

# Benchmarks: ratios against their references, measured in one run; see bench/.
bench:
	bash test/deps.sh
	$(MAKE) all
	$(MAKE) install
	bash test/harness.sh bash bench/bench.sh

# Read latency (live, L1 hit, L3 hit, first miss) at two data sizes; see
# bench/scale.sh.
bench-scale:
	bash test/deps.sh
	$(MAKE) all
	$(MAKE) install
	bash test/harness.sh bash bench/scale.sh

# Fault injection (test/faults) and the libFuzzer targets (fuzz/), on the
# same throwaway servers; longer than what make test runs.
faults:
	MLCACHE_FAULT_DEPS=1 bash test/deps.sh
	$(MAKE) all
	$(MAKE) install
	bash test/harness.sh bash test/faults/run.sh
	bash fuzz/run.sh 60

fuzz:
	MLCACHE_FAULT_DEPS=1 bash test/deps.sh
	bash fuzz/run.sh $(or $(FUZZ_SECONDS),60)

$(OBJS): $(MLCACHE_HEADERS)
