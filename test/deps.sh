#!/usr/bin/env bash
# test/deps.sh: make sure the Debian packages mlcache builds and tests with are installed (quiet if so).
set -euo pipefail

pkgs=(
	postgresql-15 postgresql-client-15 postgresql-server-dev-15   # server, psql/pg_regress/isolation, PGXS
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl    # pgTAP + pg_prove
	postgresql-15-cron                                            # pg_cron, for the maintenance schedule
	libhiredis-dev redis-server redis-tools                       # hiredis, redis-server, redis-cli
	gcc libc6-dev make procps libssl-dev                          # build (libcrypto for the envelope MAC); pgrep/pkill/ps
	postgresql-15-pgmemcache memcached                           # the peer that make bench measures against
	gnuplot-nox fonts-dejavu-core                                 # make demo's latency plot, make bench's plots
	python3 python3-psycopg2 python3-django                       # the checker and the Django example (/usr/bin/python3)
)
# make faults / make fuzz also build the libFuzzer targets.
if [[ ${MLCACHE_FAULT_DEPS:-} == 1 ]]; then
	pkgs+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

if ((EUID != 0)); then
	echo "mlcache: missing Debian packages: ${missing[*]}. Install them as root with: apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "mlcache: installing missing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
# A fresh postgresql-common would make postgresql-15 create a 'main' cluster: turn that off first.
common() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' postgresql-common 2>/dev/null) == installed ]] && return 0
	local conf=/etc/postgresql-common/createcluster.conf
	apt_install postgresql-common &&
		sed -i 's/^#\? *create_main_cluster *=.*/create_main_cluster = false/' "$conf" &&
		{ grep -q '^create_main_cluster' "$conf" || echo 'create_main_cluster = false' >>"$conf"; }
}

# No init system here: forbid service starts during the install (exit 101), unless a policy exists already.
policy=/usr/sbin/policy-rc.d own_policy=
log=$(mktemp /tmp/mlcache-apt.XXXXXX)
trap 'rm -f "$log"; [[ -z $own_policy ]] || rm -f "$policy"' EXIT
if [[ ! -e $policy ]]; then
	own_policy=1
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi

# apt's chatter goes to a log that is shown only if something fails.
if ! { apt-get update -q && common && apt_install "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "mlcache: apt-get failed to install: ${missing[*]}" >&2
	exit 1
fi
echo "mlcache: installed ${missing[*]}" >&2
