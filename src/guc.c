/*
 * guc.c
 *	  Definitions of every mlcache.* configuration parameter.
 *
 * Contexts follow what a setting controls: anything that sizes shared memory
 * is PGC_POSTMASTER, the Redis address and login are PGC_SIGHUP (the
 * password also superuser-only), and per-call knobs are PGC_USERSET.
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "guc.h"

bool		mlcache_enabled = true;
int			mlcache_l1_ttl = 60;
int			mlcache_l2_ttl = 3600;
int			mlcache_l3_ttl = 7 * 24 * 3600;
int			mlcache_l1_max_memory = 50 * 1024;
char	   *mlcache_redis_host = NULL;
int			mlcache_redis_port = 6379;
char	   *mlcache_redis_socket = NULL;
char	   *mlcache_redis_username = NULL;
char	   *mlcache_redis_password = NULL;
char	   *mlcache_redis_sentinels = NULL;
char	   *mlcache_redis_master_name = NULL;
char	   *mlcache_redis_sentinel_password = NULL;
int			mlcache_redis_database = 0;
int			mlcache_redis_connect_timeout = 50;
int			mlcache_redis_command_timeout = 50;
int			mlcache_redis_retry_interval = 1000;
char	   *mlcache_key_prefix = NULL;
int			mlcache_max_value_size = 8 * 1024;
int			mlcache_generation_slots = 65536;
int			mlcache_refresh_delay = 1000;
int			mlcache_fill_wait_timeout = 2000;
int			mlcache_track_max = 5000;
int			mlcache_redis_spin_us = 0;
int			mlcache_track_flush_interval = 1000;
int			mlcache_scan_interval = 1000;
int			mlcache_hygiene_delay = 50;
int			mlcache_warm_task_timeout = 30000;
int			mlcache_warm_max_attempts = 5;
int			mlcache_warm_sync_limit = 2000;
bool		mlcache_standby_invalidation = true;

uint64		mlcache_redis_config_version = 0;
uint64		mlcache_prefix_config_version = 0;

/* Any Redis connection setting changed: the next call reconnects. */
static void
redis_setting_assign(const char *newval, void *extra)
{
	mlcache_redis_config_version++;
}

static void
redis_int_setting_assign(int newval, void *extra)
{
	mlcache_redis_config_version++;
}

static void
key_prefix_assign(const char *newval, void *extra)
{
	mlcache_prefix_config_version++;
}

/*
 * A key prefix may not contain control characters: it becomes part of every
 * Redis key and of the PUBLISH channel name.
 */
static bool
key_prefix_check(char **newval, void **extra, GucSource source)
{
	const unsigned char *p;

	if (*newval == NULL)
		return true;
	for (p = (const unsigned char *) *newval; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
		{
			GUC_check_errdetail("mlcache.key_prefix must not contain control characters.");
			return false;
		}
	}
	if (strlen(*newval) > 200)
	{
		GUC_check_errdetail("mlcache.key_prefix must be at most 200 bytes long.");
		return false;
	}
	return true;
}

/*
 * mlcache.redis_host must be a numeric IPv4 or IPv6 address, or "localhost"
 * (connected to as 127.0.0.1): hiredis resolves a host name with a blocking
 * getaddrinfo that no timeout bounds, so a slow DNS server would hold every
 * backend that reconnects, beyond mlcache.redis_connect_timeout.
 */
static bool
redis_host_check(char **newval, void **extra, GucSource source)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (*newval == NULL || pg_strcasecmp(*newval, "localhost") == 0 ||
		inet_pton(AF_INET, *newval, addr) == 1 ||
		inet_pton(AF_INET6, *newval, addr) == 1)
		return true;
	GUC_check_errdetail("mlcache.redis_host must be a numeric IPv4 or IPv6 address, or \"localhost\".");
	GUC_check_errhint("Host names are refused because resolving them could block without a time limit; give the server's address, or use mlcache.redis_socket.");
	return false;
}

/* Is host a numeric IPv4 or IPv6 address (so no DNS lookup can block)? */
bool
mlcache_numeric_host(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/*
 * Parse one "host:port" item (len bytes at s) into out: host is an IPv4
 * address, "[IPv6]" or localhost (kept as 127.0.0.1).  False if malformed.
 */
static bool
guc_parse_hostport(const char *s, int len, MlcacheRedisAddr *out)
{
	const char *colon;
	const char *hs = s;
	int			hlen;
	char		portbuf[8];
	char	   *end;
	long		port;

	colon = NULL;
	for (int i = len - 1; i >= 0; i--)
		if (s[i] == ':')
		{
			colon = s + i;
			break;
		}
	if (colon == NULL || colon == s || s + len - colon - 1 <= 0 || s + len - colon - 1 >= (int) sizeof(portbuf))
		return false;
	hlen = colon - s;
	if (hs[0] == '[' && hlen >= 2 && hs[hlen - 1] == ']')
	{
		hs++;
		hlen -= 2;
	}
	if (hlen <= 0 || hlen >= MLCACHE_HOSTLEN)
		return false;
	memcpy(out->host, hs, hlen);
	out->host[hlen] = '\0';
	memcpy(portbuf, colon + 1, s + len - colon - 1);
	portbuf[s + len - colon - 1] = '\0';
	port = strtol(portbuf, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return false;
	out->port = (int) port;
	if (pg_strcasecmp(out->host, "localhost") == 0)
		strlcpy(out->host, "127.0.0.1", sizeof(out->host));
	return mlcache_numeric_host(out->host);
}

/*
 * Parse a comma-separated list of sentinels into out (at most max).  Returns
 * how many, or -1 with the offending item copied into bad.  Spaces around
 * items are ignored; empty items are not allowed.
 */
int
mlcache_parse_sentinels(const char *list, MlcacheRedisAddr *out, int max,
					   char *bad, int badlen)
{
	const char *p = list;
	int			n = 0;

	while (*p)
	{
		const char *start;
		const char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (n >= max || !guc_parse_hostport(start, end - start, &out[n]))
		{
			int			blen = Min((int) (end - start), badlen - 1);

			memcpy(bad, start, Max(blen, 0));
			bad[Max(blen, 0)] = '\0';
			return -1;
		}
		n++;
		if (*p == ',')
		{
			p++;
			if (*p == '\0')
			{
				strlcpy(bad, "(empty)", badlen);
				return -1;
			}
		}
	}
	return n;
}

/*
 * mlcache.redis_sentinels: a comma-separated list of host:port, each host
 * numeric (IPv4, [IPv6]) or localhost, for the reason given above.
 */
static bool
redis_sentinels_check(char **newval, void **extra, GucSource source)
{
	MlcacheRedisAddr list[MLCACHE_MAX_SENTINELS];
	char		bad[64];

	if (*newval == NULL || (*newval)[0] == '\0' ||
		mlcache_parse_sentinels(*newval, list, MLCACHE_MAX_SENTINELS, bad, sizeof(bad)) > 0)
		return true;
	GUC_check_errdetail("\"%s\" is not host:port with a numeric host, or more than %d sentinels are listed.",
						bad, MLCACHE_MAX_SENTINELS);
	GUC_check_errhint("List sentinels as 10.0.0.1:26379,10.0.0.2:26379 or [::1]:26379; host names are refused because resolving them could block without a time limit.");
	return false;
}

/* A master name is sent as one argument: it must not be empty. */
static bool
redis_master_name_check(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && (*newval)[0] != '\0')
		return true;
	GUC_check_errdetail("mlcache.redis_master_name must not be empty.");
	return false;
}

/* The generation table is indexed with a mask, so its size is a power of 2. */
static bool
generation_slots_check(int *newval, void **extra, GucSource source)
{
	if ((*newval & (*newval - 1)) != 0)
	{
		GUC_check_errdetail("mlcache.generation_slots must be a power of 2.");
		return false;
	}
	return true;
}

static void
define_ttl(const char *name, const char *desc, int *var, int boot)
{
	DefineCustomIntVariable(name, desc,
							"0 means values are not kept at this level.",
							var, boot, 0, INT_MAX / 1000,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

static void
define_redis_gucs(void)
{
	DefineCustomStringVariable("mlcache.redis_host",
							   "IP address of the Redis server, or localhost.",
							   "Ignored when mlcache.redis_socket is set.  Host names are refused: "
							   "resolving them could block without a time limit.",
							   &mlcache_redis_host, "127.0.0.1",
							   PGC_SIGHUP, 0,
							   redis_host_check, redis_setting_assign, NULL);
	DefineCustomIntVariable("mlcache.redis_port",
							"TCP port of the Redis server.",
							NULL,
							&mlcache_redis_port, 6379, 1, 65535,
							PGC_SIGHUP, 0,
							NULL, redis_int_setting_assign, NULL);
	DefineCustomStringVariable("mlcache.redis_socket",
							   "Unix socket path of the Redis server; empty to use host and port.",
							   NULL,
							   &mlcache_redis_socket, "",
							   PGC_SIGHUP, 0,
							   NULL, redis_setting_assign, NULL);
	DefineCustomStringVariable("mlcache.redis_username",
							   "Redis ACL user to authenticate as (AUTH user password); empty for the default user.",
							   NULL,
							   &mlcache_redis_username, "",
							   PGC_SIGHUP, 0,
							   NULL, redis_setting_assign, NULL);
	DefineCustomStringVariable("mlcache.redis_password",
							   "Password sent with AUTH after connecting; empty for none.",
							   NULL,
							   &mlcache_redis_password, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, redis_setting_assign, NULL);
	DefineCustomStringVariable("mlcache.redis_sentinels",
							   "Redis Sentinel addresses (host:port, comma-separated); empty to connect directly.",
							   "When set, mlcache connects to the master these sentinels name, and "
							   "mlcache.redis_host, redis_port and redis_socket are ignored.",
							   &mlcache_redis_sentinels, "",
							   PGC_SIGHUP, 0,
							   redis_sentinels_check, redis_setting_assign, NULL);
	DefineCustomStringVariable("mlcache.redis_master_name",
							   "Name under which the sentinels monitor the Redis master.",
							   NULL,
							   &mlcache_redis_master_name, "mymaster",
							   PGC_SIGHUP, 0,
							   redis_master_name_check, redis_setting_assign, NULL);
	DefineCustomStringVariable("mlcache.redis_sentinel_password",
							   "Password sent with AUTH to each sentinel; empty for none.",
							   NULL,
							   &mlcache_redis_sentinel_password, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   NULL, redis_setting_assign, NULL);
	DefineCustomIntVariable("mlcache.redis_database",
							"Redis logical database number (SELECT).",
							NULL,
							&mlcache_redis_database, 0, 0, 1024,
							PGC_SIGHUP, 0,
							NULL, redis_int_setting_assign, NULL);
	DefineCustomIntVariable("mlcache.redis_connect_timeout",
							"Upper bound on connecting to Redis.",
							NULL,
							&mlcache_redis_connect_timeout, 50, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, redis_int_setting_assign, NULL);
	DefineCustomIntVariable("mlcache.redis_command_timeout",
							"Upper bound on each Redis command's send and receive.",
							"This is the real bound on how long a query can wait for Redis: "
							"a Redis call cannot be interrupted by cancel or statement_timeout.",
							&mlcache_redis_command_timeout, 50, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, redis_int_setting_assign, NULL);
	DefineCustomIntVariable("mlcache.redis_retry_interval",
							"How long Redis is skipped after an error (circuit breaker).",
							NULL,
							&mlcache_redis_retry_interval, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/*
 * Define all parameters.  Called from _PG_init, also when the library is not
 * preloaded (then without the PGC_POSTMASTER ones), so that settings are
 * validated the same way in every process.
 */
void
mlcache_guc_init(void)
{
	DefineCustomBoolVariable("mlcache.enabled",
							 "Enables reading and filling the cache.",
							 "When off, every read computes its query and nothing is stored; "
							 "invalidations are still recorded.",
							 &mlcache_enabled, true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	define_ttl("mlcache.l1_ttl", "Default time to live in backend memory (L1).",
			   &mlcache_l1_ttl, 60);
	define_ttl("mlcache.l2_ttl", "Default time to live in Redis (L2).",
			   &mlcache_l2_ttl, 3600);
	define_ttl("mlcache.l3_ttl", "Age after which a materialized view (L3) is refreshed.",
			   &mlcache_l3_ttl, 7 * 24 * 3600);
	DefineCustomIntVariable("mlcache.l1_max_memory",
							"Memory cap of each backend's L1 cache, enforced by LRU eviction.",
							"A value larger than the cap is not kept in L1.",
							&mlcache_l1_max_memory, 50 * 1024, 0, INT_MAX / 2,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.max_value_size",
							"Largest value, encoded, that is stored in L1 or Redis.",
							"Larger results are returned but not cached.",
							&mlcache_max_value_size, 8 * 1024, 1, 512 * 1024,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.refresh_delay",
							"How long a materialized view stays dirty before it is refreshed (debounce).",
							"Writes during this time are gathered into one refresh.",
							&mlcache_refresh_delay, 1000, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.hygiene_delay",
							"How long the worker gathers committed invalidations into one batch for Redis.",
							"It then removes the batch's keys from Redis and publishes them, each once.",
							&mlcache_hygiene_delay, 50, 0, 10000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.scan_interval",
							"Shortest time between two SCAN passes of a namespace in Redis by the worker.",
							"Patterns invalidated meanwhile wait for the next pass, which cleans them all; "
							"0 runs a pass for every batch.",
							&mlcache_scan_interval, 1000, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.fill_wait_timeout",
							"How long a miss waits for another backend computing the same key.",
							"After it, the value is computed without being stored.",
							&mlcache_fill_wait_timeout, 2000, 1, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.warm_sync_limit",
							"Warming estimated to take less than this runs in the caller; the rest is queued.",
							"The estimate comes from the recorded compute times of the definitions.",
							&mlcache_warm_sync_limit, 2000, 0, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.warm_task_timeout",
							"Time limit of one queued warming task in the background worker.",
							NULL,
							&mlcache_warm_task_timeout, 30000, 1, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.warm_max_attempts",
							"Attempts of a queued warming task before it is marked failed.",
							"Retries wait 1 s, 2 s, 4 s ... after each failure.",
							&mlcache_warm_max_attempts, 5, 1, 100,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	define_redis_gucs();
	DefineCustomStringVariable("mlcache.key_prefix",
							   "Namespace prepended to every Redis key; empty derives \"mlcache:<system identifier>:<database>:\".",
							   NULL,
							   &mlcache_key_prefix, "",
							   PGC_SUSET, 0,
							   key_prefix_check, key_prefix_assign, NULL);
	DefineCustomIntVariable("mlcache.redis_spin_us",
							"How long to poll for a Redis reply before sleeping on it.",
							NULL,
							&mlcache_redis_spin_us, 0, 0, 1000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("mlcache.track_flush_interval",
							"How long a backend may keep its per-key read counts before adding them to key_stats().",
							"They are added at the end of the first transaction this long after the oldest, "
							"and when the backend exits; 0 adds them at the end of every transaction.",
							&mlcache_track_flush_interval, 1000, 0, 3600000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* Shared-memory sizes can only be defined while preloading. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("mlcache.track_max",
								"Number of keys whose hits and misses are tracked over 24 hours.",
								"When full, the 5% of keys read least in the last 24 hours are evicted.",
								&mlcache_track_max, 5000, 0, 1000000,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("mlcache.generation_slots",
								"Number of shared-memory generation counters (a power of 2).",
								"More slots make hash collisions, which cost a spurious miss, rarer.",
								&mlcache_generation_slots, 65536, 1024, 1 << 24,
								PGC_POSTMASTER, 0,
								generation_slots_check, NULL, NULL);

	DefineCustomBoolVariable("mlcache.standby_invalidation",
							 "Logs each committing transaction's invalidations in the WAL, so that hot standbys can cache.",
							 "When off, hot standbys read around the cache. It takes effect when the "
							 "mlcache worker of the primary reloads the configuration.",
							 &mlcache_standby_invalidation, true,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("mlcache");
}
